// The sequential schedule's hand-over: a trained partition is run once over a data set and its
// outputs, with the same labels, become the next partition's data set. This is the only
// communication of sequential PNN; its bytes are counted as "handover".
#pragma once

#include <cstdint>
#include <string>

#include "tessera/data/dataset.h"
#include "tessera/models/staged_model.h"

namespace tessera::pnn {

struct HandoverOptions {
  // memory: an ordinary tensor; file: a memory-mapped file at `file` (the page cache may evict
  // it, so hand-overs larger than memory work); auto: file when the outputs would take more
  // than half of the memory available now.
  std::string store = "auto";
  std::string file;  // needed for store file / auto; removed once nothing maps it
  int64_t batch_size = 1000;
  std::string device = "cpu";
};

void validate(const HandoverOptions& options);

// The partition's outputs (eval mode, no gradients) for every sample of `input`, in order.
data::Dataset hand_over(models::StagedModel& partition, const data::Dataset& input,
                        const HandoverOptions& options);

}  // namespace tessera::pnn
