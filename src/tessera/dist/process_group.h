// tessera's small API over PyTorch's c10d: a key-value Store for rendezvous and a ProcessGroup of
// ranks with the collectives the methods need. process_group.cpp is the only file that includes
// c10d headers (ProcessGroupGloo on CPU, ProcessGroupNCCL under TESSERA_WITH_CUDA), so a port to
// another libtorch touches that file only.
//
// Every collective is counted in metrics::count_comm_bytes with the bytes this rank sends under
// the algorithm Gloo runs: all_reduce 2(W-1)/W x payload (ring), all_gather (W-1) x own payload
// (ring), broadcast (W-1) x payload on the root (one to all), send its payload; recv and barrier 0.
//
// Collectives must be issued in the same order by every member. A failed or timed-out collective
// throws tessera::Error naming this rank, the operation and, where it can tell, the peer that died.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace tessera::dist {

// A rendezvous key-value store shared by all ranks (c10d TCPStore, FileStore or PrefixStore).
class Store {
 public:
  struct Impl;
  // Rank 0 (`is_server`) listens on host:port and waits up to `timeout` for `world_size` clients;
  // the others connect to it, retrying until `timeout`. Throws tessera::Error with a readable
  // reason (port in use, master unreachable, workers missing).
  static Store tcp(const std::string& host, int port, bool is_server, int64_t world_size,
                   std::chrono::milliseconds timeout);
  // A store in a file shared by the ranks of one host (the file is removed by the last user).
  static Store file(const std::string& path, int64_t world_size, std::chrono::milliseconds timeout);
  // The same store with every key prefixed (for sub-groups and torchrun's agent store).
  Store with_prefix(const std::string& prefix) const;

  void set(const std::string& key, const std::string& value);
  // Waits up to the store's timeout for the key.
  std::string get(const std::string& key);
  int64_t add(const std::string& key, int64_t delta);
  // Port a TCP store listens on (useful with port 0); 0 for other stores.
  int port() const;

  const std::shared_ptr<Impl>& impl() const { return impl_; }

 private:
  explicit Store(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

enum class ReduceOp { Sum, Max, Min };

// Bytes one rank sends in a ring all-reduce of `payload` bytes among `world` ranks (what
// ProcessGroup::all_reduce counts): 2 (W - 1) / W x payload.
inline int64_t all_reduce_bytes(int64_t payload, int64_t world) {
  return 2 * (world - 1) * payload / world;
}

// A pending asynchronous collective. wait() blocks up to the group's timeout and rethrows a
// failure as tessera::Error. Waiting twice is allowed; destroying a Work does not wait, except
// one of all_reduce_bf16_async on Gloo, whose helper thread is joined (each hop has the timeout).
class Work {
 public:
  struct Impl;
  Work() = default;
  explicit Work(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  void wait();
  bool valid() const { return impl_ != nullptr; }

 private:
  std::shared_ptr<Impl> impl_;
};

struct GroupOptions {
  std::chrono::milliseconds timeout{std::chrono::seconds(300)};
  // Network interface the Gloo device binds to (e.g. "eth0"); empty: bind to `address`.
  std::string iface;
  // Address (or host name) the Gloo device binds to when no interface is given.
  std::string address = "127.0.0.1";
  std::string device = "cpu";  // "cuda" selects NCCL (builds with TESSERA_WITH_CUDA only)
};

// Ranks [0, size) connected through a store. Copies share the same underlying group.
class ProcessGroup {
 public:
  struct Impl;
  // Connects every rank (all ranks call it together). Throws tessera::Error on timeout.
  ProcessGroup(Store store, int64_t rank, int64_t size, GroupOptions options);

  int64_t rank() const;
  int64_t size() const;
  const GroupOptions& options() const;
  Store& store();

  // In-place on every tensor of the list (same shapes on all ranks).
  void all_reduce(std::vector<torch::Tensor>& tensors, ReduceOp op = ReduceOp::Sum);
  Work all_reduce_async(std::vector<torch::Tensor>& tensors, ReduceOp op = ReduceOp::Sum);
  // The sum of float32 tensors, sent as bf16 (half the bytes; counted as all_reduce_bytes of the
  // bf16 payload). NCCL adds bf16 itself; Gloo cannot (libtorch 1.13), so a ring reduce-scatter
  // and all-gather of bf16 chunks runs over point-to-point messages on a helper thread, each hop
  // adding what it receives in float32. Every rank gets the same values, within about size()
  // bf16 roundings of the float32 sum.
  Work all_reduce_bf16_async(std::vector<torch::Tensor>& tensors);
  // Copies `root`'s tensors into everyone's.
  void broadcast(std::vector<torch::Tensor>& tensors, int64_t root);
  // outputs[i][r] receives rank r's inputs[i]; outputs[i] must hold size() tensors shaped like it.
  void all_gather(std::vector<std::vector<torch::Tensor>>& outputs,
                  std::vector<torch::Tensor>& inputs);
  // Point to point; `tag` tells apart messages between the same pair of ranks.
  void send(std::vector<torch::Tensor>& tensors, int64_t dst, int64_t tag = 0);
  void recv(std::vector<torch::Tensor>& tensors, int64_t src, int64_t tag = 0);
  void barrier();

  // A group of the given global ranks (ascending, distinct), rank order kept. Every rank of this
  // group must call it with the same list in the same order; non-members get std::nullopt.
  std::optional<ProcessGroup> new_group(const std::vector<int64_t>& ranks);

  // Ends a successful run: a barrier, then rank 0 waits until every rank has left, so that the
  // store it hosts outlives everyone's last use. Do not call after a failure (peers are gone).
  void shutdown();

 private:
  explicit ProcessGroup(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace tessera::dist
