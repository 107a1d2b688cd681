#include "tessera/pnn/handover.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "tessera/core/error.h"
#include "tessera/data/large_tensor.h"
#include "tessera/metrics/comm_counter.h"

namespace tessera::pnn {

void validate(const HandoverOptions& options) {
  require(options.store == "memory" || options.store == "file" || options.store == "auto",
          "unknown --handover '" + options.store + "' (known: memory, file, auto)");
  require(options.batch_size >= 1, "the hand-over batch size must be at least 1");
  require(options.store == "memory" || !options.file.empty(),
          "--handover " + options.store + " needs a file (a run directory)");
}

namespace {

int64_t available_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return 0;
}

// A float tensor backed by a new file of the right size, mapped shared: writes go to the file,
// reads come from the page cache. The file is unlinked at once; the mapping keeps it alive.
torch::Tensor mapped_tensor(const std::string& path, const std::vector<int64_t>& sizes) {
  int64_t count = 1;
  for (const int64_t s : sizes) count *= s;
  const auto bytes = static_cast<size_t>(count) * sizeof(float);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw Error("hand-over file " + path + ": " + std::strerror(errno));
  // posix_fallocate reserves the blocks now: a full disk fails here, not as SIGBUS later.
  const int reserved = bytes > 0 ? ::posix_fallocate(fd, 0, static_cast<off_t>(bytes)) : 0;
  void* data = reserved == 0 && bytes > 0
                   ? ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                   : nullptr;
  const int error = reserved != 0 ? reserved : errno;
  ::close(fd);
  ::unlink(path.c_str());
  if (bytes > 0 && (data == nullptr || data == MAP_FAILED))
    throw Error("hand-over file " + path + " (" + std::to_string(bytes >> 20) +
                " MiB): " + std::strerror(error));
  return torch::from_blob(
      data, sizes, [bytes](void* p) { ::munmap(p, bytes); }, torch::kFloat32);
}

}  // namespace

data::Dataset hand_over(models::StagedModel& partition, const data::Dataset& input,
                        const HandoverOptions& options) {
  validate(options);
  const torch::Device device(options.device);
  // Token windows are handed over as fixed windows (at multiples of seq_len, as evaluation's):
  // the next partition trains on the same windows every epoch, in a new order.
  const data::Dataset source = input.windows ? data::fixed_windows(input) : input;
  std::vector<int64_t> sizes = with_batch(source.size(), partition->output_shape());
  const int64_t bytes = numel(sizes) * static_cast<int64_t>(sizeof(float));
  const bool to_file =
      options.store == "file" || (options.store == "auto" && bytes > available_memory_bytes() / 2);
  data::Dataset output;
  output.name = input.name + "@stage" + std::to_string(partition->end_stage());
  output.labels = source.labels;
  output.num_classes = input.num_classes;
  output.inputs =
      to_file ? mapped_tensor(options.file, sizes) : data::empty_large(sizes, torch::kFloat32);

  torch::NoGradGuard no_grad;
  const bool was_training = partition->is_training();
  partition->eval();
  for (int64_t start = 0; start < source.size(); start += options.batch_size) {
    const int64_t end = std::min(start + options.batch_size, source.size());
    const torch::Tensor batch = source.inputs.slice(0, start, end).to(device);
    output.inputs.slice(0, start, end).copy_(partition->forward(batch).to(torch::kCPU));
  }
  partition->train(was_training);
  metrics::count_comm_bytes("handover", bytes);
  return output;
}

}  // namespace tessera::pnn
