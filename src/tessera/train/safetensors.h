// The safetensors format (https://huggingface.co/docs/safetensors), written and read exactly per
// its specification: an 8-byte little-endian header length N, N bytes of JSON header (for every
// tensor {"dtype", "shape", "data_offsets": [begin, end]}, offsets relative to the first byte after
// the header, plus an optional "__metadata__" object of strings), padded with spaces so that the
// data starts 8-byte aligned, then the tensors' raw little-endian bytes, contiguous, in the order
// of the reference implementation (larger element types first, then by name).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <torch/torch.h>

namespace tessera::train {

struct SafetensorsFile {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;  // read: sorted by name
  std::map<std::string, std::string> metadata;                 // "__metadata__"
};

// The bytes of a safetensors file holding `file`'s tensors (any device; made contiguous on the
// CPU). Throws tessera::Error for an empty or duplicate name, or a dtype safetensors cannot hold.
std::string write_safetensors(const SafetensorsFile& file);

// Parses the bytes of a safetensors file. `source` names the input in error messages. Never trusts
// the file: a header length beyond the buffer or above 100 MB, non-JSON or non-object header,
// duplicate names, unknown dtypes, negative or overflowing shapes, offsets out of range,
// overlapping or leaving gaps, and a byte length that is not shape x element size are all
// tessera::Error. It allocates no more than the size of the buffer.
SafetensorsFile read_safetensors(std::string_view bytes, const std::string& source);

// safetensors' name of a dtype ("F32", "I64", ...); throws tessera::Error for one it cannot hold.
std::string safetensors_dtype(torch::ScalarType type);

}  // namespace tessera::train
