// Shapes of one sample (no batch dimension) as plain vectors, with the few helpers we need.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tessera {

using Shape = std::vector<int64_t>;

// Number of elements of one sample of this shape (1 for an empty shape).
int64_t numel(const Shape& shape);

// "[3, 32, 32]".
std::string to_string(const Shape& shape);

// The shape with a leading batch dimension, as libtorch expects.
std::vector<int64_t> with_batch(int64_t batch, const Shape& shape);

}  // namespace tessera
