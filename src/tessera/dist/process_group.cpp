// The one file that talks to c10d. What differs between libtorch versions is marked
// `// torch-compat:`; everything else in tessera::dist goes through process_group.h.
#include "tessera/dist/process_group.h"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <functional>
#include <future>
#include <thread>

#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef TESSERA_WITH_CUDA
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "tessera/core/error.h"
#include "tessera/dist/peers.h"
#include "tessera/metrics/comm_counter.h"

namespace tessera::dist {

// torch-compat: in libtorch 2.x the Gloo and NCCL groups are c10d::Backend objects under a
// c10d::ProcessGroup; in 1.13 they are ProcessGroups themselves. Both have the same collectives.
#if TORCH_VERSION_MAJOR >= 2
using C10dGroup = ::c10d::Backend;
#else
using C10dGroup = ::c10d::ProcessGroup;
#endif

struct Store::Impl {
  c10::intrusive_ptr<::c10d::Store> store;
  int port = 0;
};

namespace {

std::string c10d_message(const std::exception& e) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e))
    return c10_error->what_without_backtrace();
  return e.what();
}

bool contains(const std::string& text, const std::string& part) {
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  return lower.find(part) != std::string::npos;
}

// Turns c10d's store errors into what the user should check.
std::string tcp_store_hint(const std::string& message, const std::string& address, bool is_server,
                           int64_t world_size, std::chrono::milliseconds timeout) {
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%g s", static_cast<double>(timeout.count()) / 1000.0);
  if (is_server && (contains(message, "address already in use") || contains(message, "listen")))
    return "cannot listen on " + address + ": the port is busy (another run?); choose another " +
           "MASTER_PORT / --master-port";
  if (is_server && contains(message, "waiting for clients"))
    return "not all WORLD_SIZE=" + std::to_string(world_size) + " workers joined at " + address +
           " within " + std::string(seconds) +
           ": check that every worker has the same WORLD_SIZE and started";
  if (!is_server)
    return "cannot reach the master (rank 0) at " + address + " within " + seconds +
           ": check MASTER_ADDR / MASTER_PORT and that rank 0 is running";
  return "rendezvous at " + address + " failed";
}

c10d::ReduceOp to_c10d(ReduceOp op) {
  switch (op) {
    case ReduceOp::Max:
      return c10d::ReduceOp::MAX;
    case ReduceOp::Min:
      return c10d::ReduceOp::MIN;
    case ReduceOp::Sum:
      break;
  }
  return c10d::ReduceOp::SUM;
}

int64_t payload_bytes(const std::vector<torch::Tensor>& tensors) {
  int64_t bytes = 0;
  for (const auto& t : tensors) bytes += t.numel() * static_cast<int64_t>(t.element_size());
  return bytes;
}

// Gloo takes one tensor per local device, not a bag of tensors: lists travel as one flat buffer.
// A single contiguous tensor is used in place.
torch::Tensor flatten(const std::vector<torch::Tensor>& tensors) {
  if (tensors.empty()) throw Error("collective on an empty tensor list");
  for (const auto& t : tensors)
    if (t.scalar_type() != tensors[0].scalar_type() || t.device() != tensors[0].device())
      throw Error("collective: all tensors of a list must share dtype and device");
  if (tensors.size() == 1 && tensors[0].is_contiguous()) return tensors[0];
  std::vector<torch::Tensor> flat;
  flat.reserve(tensors.size());
  for (const auto& t : tensors) flat.push_back(t.reshape({-1}));
  return torch::cat(flat);
}

// NCCL only takes CUDA tensors, but small bookkeeping collectives (step counts, checksums, loss
// sums) use CPU tensors: under NCCL such a buffer travels through the device and comes back in
// unflatten_into. Gloo takes both.
torch::Tensor on_collective_device(torch::Tensor flat, const std::string& group_device) {
  if (group_device.rfind("cuda", 0) != 0 || flat.is_cuda()) return flat;
  return flat.to(torch::Device(group_device));
}

void unflatten_into(const torch::Tensor& flat, std::vector<torch::Tensor>& tensors) {
  if (tensors.size() == 1 && flat.is_same(tensors[0])) return;
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  for (auto& t : tensors) {
    t.copy_(flat.slice(0, offset, offset + t.numel()).view(t.sizes()));
    offset += t.numel();
  }
}

}  // namespace

Store Store::tcp(const std::string& host, int port, bool is_server, int64_t world_size,
                 std::chrono::milliseconds timeout) {
  ::c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(port);
  options.isServer = is_server;
  options.numWorkers = static_cast<std::size_t>(world_size);
  // No waiting for the clients here: libtorch 1.13's server gives up on them silently after the
  // timeout, and the rendezvous (check_membership) then waited a whole timeout again before
  // naming the missing rank, so a worker that died while the others met kept them for twice
  // --dist-timeout. check_membership waits for every rank itself, once, and names the missing one.
  options.waitWorkers = false;
  options.timeout = timeout;
  auto impl = std::make_shared<Impl>();
  try {
    auto store = c10::make_intrusive<::c10d::TCPStore>(host, options);
    impl->port = store->getPort();
    impl->store = store;
  } catch (const std::exception& e) {
    const std::string address = host + ":" + std::to_string(port);
    throw Error(tcp_store_hint(c10d_message(e), address, is_server, world_size, timeout) +
                " (c10d: " + c10d_message(e) + ")");
  }
  return Store(impl);
}

Store Store::file(const std::string& path, int64_t world_size, std::chrono::milliseconds timeout) {
  auto impl = std::make_shared<Impl>();
  try {
    impl->store = c10::make_intrusive<::c10d::FileStore>(path, static_cast<int>(world_size));
    impl->store->setTimeout(timeout);
  } catch (const std::exception& e) {
    throw Error("cannot open the rendezvous file '" + path + "': " + c10d_message(e));
  }
  return Store(impl);
}

Store Store::with_prefix(const std::string& prefix) const {
  auto impl = std::make_shared<Impl>();
  impl->store = c10::make_intrusive<::c10d::PrefixStore>(prefix, impl_->store);
  impl->port = impl_->port;
  return Store(impl);
}

void Store::set(const std::string& key, const std::string& value) {
  try {
    impl_->store->set(key, std::vector<uint8_t>(value.begin(), value.end()));
  } catch (const std::exception& e) {
    throw Error("rendezvous store: cannot set '" + key + "': " + c10d_message(e));
  }
}

std::string Store::get(const std::string& key) {
  try {
    const std::vector<uint8_t> value = impl_->store->get(key);
    return std::string(value.begin(), value.end());
  } catch (const std::exception& e) {
    throw Error("rendezvous store: no value for '" + key + "' (" + c10d_message(e) + ")");
  }
}

int64_t Store::add(const std::string& key, int64_t delta) {
  try {
    return impl_->store->add(key, delta);
  } catch (const std::exception& e) {
    throw Error("rendezvous store: cannot add to '" + key + "': " + c10d_message(e));
  }
}

int Store::port() const {
  return impl_->port;
}

struct ProcessGroup::Impl {
  Store store;
  int64_t rank = 0;
  int64_t size = 1;
  GroupOptions options;
  c10::intrusive_ptr<C10dGroup> group;
  std::vector<int64_t> global_ranks;             // global rank of each member
  std::shared_ptr<std::vector<PeerInfo>> peers;  // indexed by global rank
  int64_t next_group_id = 0;
  int64_t next_ring_tag = 0;  // tells concurrent bf16 rings apart (same order on every rank)
  int64_t self_global() const { return global_ranks[rank]; }
};

struct Work::Impl {
  c10::intrusive_ptr<::c10d::Work> work;
  std::shared_future<void> ring;  // instead of `work`: a bf16 ring on a helper thread
  std::shared_ptr<ProcessGroup::Impl> group;
  std::string what;
  std::function<void()> finish;  // e.g. copies a flat buffer back into the caller's tensors
  bool done = false;
};

namespace {

[[noreturn]] void throw_failure(const ProcessGroup::Impl& group, const std::string& what,
                                const std::string& message) {
  std::string text = "rank " + std::to_string(group.self_global()) + ": " + what + " failed";
  const std::string dead = describe_dead_peers(*group.peers, group.global_ranks);
  if (!dead.empty()) text += " because " + dead;
  throw Error(text + " (" + message + ")");
}

void wait_for(const std::shared_ptr<ProcessGroup::Impl>& group,
              const c10::intrusive_ptr<::c10d::Work>& work, const std::string& what) {
  try {
    work->wait(group->options.timeout);
  } catch (const std::exception& e) {
    throw_failure(*group, what, c10d_message(e));
  }
}

std::shared_ptr<::gloo::transport::Device> gloo_device(const GroupOptions& options) {
  try {
    if (!options.iface.empty())
      return ::c10d::ProcessGroupGloo::createDeviceForInterface(options.iface);
    return ::c10d::ProcessGroupGloo::createDeviceForHostname(options.address);
  } catch (const std::exception& e) {
    const std::string where = options.iface.empty() ? "address '" + options.address + "'"
                                                    : "interface '" + options.iface + "'";
    throw Error("cannot bind the Gloo transport to " + where + ": " + c10d_message(e));
  }
}

// Gloo writes to its sockets without MSG_NOSIGNAL, so a peer that has gone away would kill this
// process with SIGPIPE before the failed operation could be reported (CI saw it). Python ignores
// SIGPIPE for PyTorch; a C++ program must do so itself: writes then fail with EPIPE, which Gloo
// turns into an error that names the operation.
void ignore_broken_pipes() {
  static const bool ignored = std::signal(SIGPIPE, SIG_IGN) != SIG_ERR;
  (void)ignored;
}

c10::intrusive_ptr<C10dGroup> make_group(Store& store, int64_t rank, int64_t size,
                                         const GroupOptions& options) {
  ignore_broken_pipes();
  const c10::intrusive_ptr<::c10d::Store>& c10d_store = store.impl()->store;
  if (options.device.rfind("cuda", 0) == 0) {
#ifdef TESSERA_WITH_CUDA
    auto nccl_options = ::c10d::ProcessGroupNCCL::Options::create();
    nccl_options->timeout = options.timeout;
    return c10::make_intrusive<::c10d::ProcessGroupNCCL>(c10d_store, static_cast<int>(rank),
                                                         static_cast<int>(size), nccl_options);
#else
    throw UsageError("--device " + options.device + ": this build has no NCCL (CPU libtorch)");
#endif
  }
  auto gloo_options = ::c10d::ProcessGroupGloo::Options::create(options.timeout);
  gloo_options->devices.push_back(gloo_device(options));
  return c10::make_intrusive<::c10d::ProcessGroupGloo>(c10d_store, static_cast<int>(rank),
                                                       static_cast<int>(size), gloo_options);
}

}  // namespace

void Work::wait() {
  if (!impl_ || impl_->done) return;
  if (impl_->ring.valid())
    impl_->ring.get();  // rethrows the ring's Error
  else
    wait_for(impl_->group, impl_->work, impl_->what);
  if (impl_->finish) impl_->finish();
  impl_->done = true;
}

ProcessGroup::ProcessGroup(Store store, int64_t rank, int64_t size, GroupOptions options) {
  require(size >= 1, "world size must be at least 1, got " + std::to_string(size));
  require(rank >= 0 && rank < size, "rank " + std::to_string(rank) + " is outside [0, " +
                                        std::to_string(size) + ") for world size " +
                                        std::to_string(size));
  auto impl = std::make_shared<Impl>(Impl{store, rank, size, options, {}, {}, {}, 0});
  for (int64_t r = 0; r < size; ++r) impl->global_ranks.push_back(r);
  PeerInfo self = this_process();
  self.address = options.iface.empty() ? options.address : interface_address(options.iface);
  impl->store.set("tessera/peer/" + std::to_string(rank), encode(self));
  try {
    impl->group = make_group(impl->store, rank, size, options);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    // Which side was wrong is not always clear from c10d's message: say where this one bound.
    const std::string bound =
        options.iface.empty() ? "address " + options.address : "interface " + options.iface;
    throw Error("rank " + std::to_string(rank) + ": connecting the " + std::to_string(size) +
                " workers failed: " + c10d_message(e) + " (this worker's Gloo transport is bound " +
                "to " + bound + ", which every other worker must reach; choose the interface " +
                "with --dist-iface or GLOO_SOCKET_IFNAME)");
  }
  impl->peers = std::make_shared<std::vector<PeerInfo>>();
  for (int64_t r = 0; r < size; ++r)
    impl->peers->push_back(decode_peer(impl->store.get("tessera/peer/" + std::to_string(r))));
  impl_ = std::move(impl);
}

int64_t ProcessGroup::rank() const {
  return impl_->rank;
}
int64_t ProcessGroup::size() const {
  return impl_->size;
}
const GroupOptions& ProcessGroup::options() const {
  return impl_->options;
}
Store& ProcessGroup::store() {
  return impl_->store;
}

Work ProcessGroup::all_reduce_async(std::vector<torch::Tensor>& tensors, ReduceOp op) {
  const int64_t bytes = payload_bytes(tensors);
  metrics::count_comm_bytes("all_reduce", all_reduce_bytes(bytes, impl_->size));
  std::vector<torch::Tensor> flat = {on_collective_device(flatten(tensors), impl_->options.device)};
  ::c10d::AllreduceOptions options;
  options.reduceOp = to_c10d(op);
  auto work = std::make_shared<Work::Impl>();
  work->group = impl_;
  work->what = "all_reduce of " + std::to_string(bytes) + " bytes";
  try {
    work->work = impl_->group->allreduce(flat, options);
  } catch (const std::exception& e) {
    throw_failure(*impl_, work->what, c10d_message(e));
  }
  work->finish = [flat, tensors]() mutable { unflatten_into(flat[0], tensors); };
  return Work(work);
}

namespace {

// Messages of the bf16 rings use tags from here on, above those callers pass to send and recv.
constexpr int64_t kRingTagBase = 1 << 24;
constexpr int64_t kRingTags = 1 << 24;

// Sends `out` to the next rank and receives `in` from the previous one, both with `tag`.
void ring_hop(const std::shared_ptr<ProcessGroup::Impl>& group, torch::Tensor out, torch::Tensor in,
              int tag) {
  const int next = static_cast<int>((group->rank + 1) % group->size);
  const int prev = static_cast<int>((group->rank + group->size - 1) % group->size);
  std::vector<torch::Tensor> outs = {std::move(out)};
  std::vector<torch::Tensor> ins = {std::move(in)};
  const std::string what = "bf16 all_reduce hop (to rank " +
                           std::to_string(group->global_ranks[next]) + ", from rank " +
                           std::to_string(group->global_ranks[prev]) + ")";
  c10::intrusive_ptr<::c10d::Work> sent, received;
  try {
    sent = group->group->send(outs, next, tag);
    received = group->group->recv(ins, prev, tag);
  } catch (const std::exception& e) {
    throw_failure(*group, what, c10d_message(e));
  }
  wait_for(group, sent, what);
  wait_for(group, received, what);
}

// The ring: W - 1 reduce-scatter hops leave rank r with the whole sum of chunk (r + 1) mod W, which
// it rounds to bf16 as everyone else will receive it; W - 1 all-gather hops hand the chunks round.
void ring_all_reduce_bf16(const std::shared_ptr<ProcessGroup::Impl>& group, torch::Tensor flat,
                          int tag) {
  torch::NoGradGuard no_grad;
  const int64_t world = group->size;
  const int64_t rank = group->rank;
  const int64_t n = flat.numel();
  auto chunk = [&](int64_t c) {
    c = ((c % world) + world) % world;
    return flat.slice(0, c * n / world, (c + 1) * n / world);
  };
  auto bf16 = [](const torch::Tensor& t) { return t.to(torch::kBFloat16).contiguous(); };
  for (int64_t step = 0; step + 1 < world; ++step) {
    torch::Tensor into = chunk(rank - step - 1);
    torch::Tensor in = torch::empty_like(into, torch::kBFloat16);
    ring_hop(group, bf16(chunk(rank - step)), in, tag);
    into.add_(in.to(torch::kFloat32));
  }
  torch::Tensor owned = chunk(rank + 1);
  owned.copy_(owned.to(torch::kBFloat16));
  for (int64_t step = 0; step + 1 < world; ++step) {
    torch::Tensor into = chunk(rank - step);
    torch::Tensor in = torch::empty_like(into, torch::kBFloat16);
    ring_hop(group, bf16(chunk(rank + 1 - step)), in, tag);
    into.copy_(in);
  }
}

}  // namespace

Work ProcessGroup::all_reduce_bf16_async(std::vector<torch::Tensor>& tensors) {
  for (const auto& t : tensors)
    require(t.scalar_type() == torch::kFloat32, "all_reduce_bf16: float32 tensors only");
  const int64_t elements = payload_bytes(tensors) / 4;
  metrics::count_comm_bytes("all_reduce", all_reduce_bytes(2 * elements, impl_->size));
  auto work = std::make_shared<Work::Impl>();
  work->group = impl_;
  work->what = "bf16 all_reduce of " + std::to_string(2 * elements) + " bytes";
  if (impl_->options.device.rfind("cuda", 0) == 0) {  // NCCL adds bf16
    std::vector<torch::Tensor> flat = {
        on_collective_device(flatten(tensors), impl_->options.device).to(torch::kBFloat16)};
    try {
      work->work = impl_->group->allreduce(flat, ::c10d::AllreduceOptions());
    } catch (const std::exception& e) {
      throw_failure(*impl_, work->what, c10d_message(e));
    }
    work->finish = [flat, tensors]() mutable {
      unflatten_into(flat[0].to(torch::kFloat32), tensors);
    };
    return Work(work);
  }
  torch::Tensor flat = flatten(tensors).reshape({-1}).clone();  // the ring's own buffer
  const int tag = static_cast<int>(kRingTagBase + impl_->next_ring_tag++ % kRingTags);
  if (impl_->size > 1) {
    std::shared_ptr<Impl> group = impl_;
    work->ring = std::async(std::launch::async, [group, flat, tag] {
                   ring_all_reduce_bf16(group, flat, tag);
                 }).share();
  }
  work->finish = [flat, tensors]() mutable { unflatten_into(flat, tensors); };
  return Work(work);
}

void ProcessGroup::all_reduce(std::vector<torch::Tensor>& tensors, ReduceOp op) {
  all_reduce_async(tensors, op).wait();
}

void ProcessGroup::broadcast(std::vector<torch::Tensor>& tensors, int64_t root) {
  require(root >= 0 && root < impl_->size, "broadcast: root outside the group");
  const int64_t bytes = payload_bytes(tensors);
  if (impl_->rank == root) metrics::count_comm_bytes("broadcast", (impl_->size - 1) * bytes);
  std::vector<torch::Tensor> flat = {on_collective_device(flatten(tensors), impl_->options.device)};
  ::c10d::BroadcastOptions options;
  options.rootRank = root;
  const std::string what = "broadcast of " + std::to_string(bytes) + " bytes";
  try {
    wait_for(impl_, impl_->group->broadcast(flat, options), what);
  } catch (const c10::Error& e) {
    throw_failure(*impl_, what, c10d_message(e));
  }
  unflatten_into(flat[0], tensors);
}

void ProcessGroup::all_gather(std::vector<std::vector<torch::Tensor>>& outputs,
                              std::vector<torch::Tensor>& inputs) {
  require(outputs.size() == inputs.size(), "all_gather: one output list per input tensor");
  for (const auto& list : outputs)
    require(static_cast<int64_t>(list.size()) == impl_->size,
            "all_gather: every output list needs one tensor per rank");
  const int64_t bytes = payload_bytes(inputs);
  metrics::count_comm_bytes("all_gather", (impl_->size - 1) * bytes);
  std::vector<torch::Tensor> flat_in = {
      on_collective_device(flatten(inputs), impl_->options.device)};
  std::vector<std::vector<torch::Tensor>> flat_out(1);
  for (int64_t r = 0; r < impl_->size; ++r) flat_out[0].push_back(torch::empty_like(flat_in[0]));
  const std::string what = "all_gather of " + std::to_string(bytes) + " bytes";
  try {
    wait_for(impl_, impl_->group->allgather(flat_out, flat_in), what);
  } catch (const c10::Error& e) {
    throw_failure(*impl_, what, c10d_message(e));
  }
  for (int64_t r = 0; r < impl_->size; ++r) {
    std::vector<torch::Tensor> slots;
    for (auto& list : outputs) slots.push_back(list[r]);
    unflatten_into(flat_out[0][r], slots);
  }
}

void ProcessGroup::send(std::vector<torch::Tensor>& tensors, int64_t dst, int64_t tag) {
  require(dst >= 0 && dst < impl_->size && dst != impl_->rank, "send: bad destination rank");
  const int64_t bytes = payload_bytes(tensors);
  metrics::count_comm_bytes("send", bytes);
  std::vector<torch::Tensor> flat = {on_collective_device(flatten(tensors), impl_->options.device)};
  const std::string what = "send of " + std::to_string(bytes) + " bytes to rank " +
                           std::to_string(impl_->global_ranks[dst]);
  try {
    wait_for(impl_, impl_->group->send(flat, static_cast<int>(dst), static_cast<int>(tag)), what);
  } catch (const c10::Error& e) {
    throw_failure(*impl_, what, c10d_message(e));
  }
}

void ProcessGroup::recv(std::vector<torch::Tensor>& tensors, int64_t src, int64_t tag) {
  require(src >= 0 && src < impl_->size && src != impl_->rank, "recv: bad source rank");
  std::vector<torch::Tensor> flat = {on_collective_device(flatten(tensors), impl_->options.device)};
  const std::string what = "recv of " + std::to_string(payload_bytes(tensors)) +
                           " bytes from rank " + std::to_string(impl_->global_ranks[src]);
  try {
    wait_for(impl_, impl_->group->recv(flat, static_cast<int>(src), static_cast<int>(tag)), what);
  } catch (const c10::Error& e) {
    throw_failure(*impl_, what, c10d_message(e));
  }
  unflatten_into(flat[0], tensors);
}

void ProcessGroup::barrier() {
  try {
    wait_for(impl_, impl_->group->barrier(), "barrier");
  } catch (const c10::Error& e) {
    throw_failure(*impl_, "barrier", c10d_message(e));
  }
}

std::optional<ProcessGroup> ProcessGroup::new_group(const std::vector<int64_t>& ranks) {
  require(!ranks.empty(), "new_group: empty rank list");
  for (size_t i = 0; i < ranks.size(); ++i)
    require(ranks[i] >= 0 && ranks[i] < impl_->size && (i == 0 || ranks[i] > ranks[i - 1]),
            "new_group: ranks must be distinct, ascending and inside the group");
  // Every member counts the same groups in the same order, so the prefix matches across ranks.
  const std::string prefix = "tessera/group" + std::to_string(impl_->next_group_id++) + "/";
  const auto position = std::find(ranks.begin(), ranks.end(), impl_->rank);
  if (position == ranks.end()) return std::nullopt;
  auto impl = std::make_shared<Impl>(Impl{impl_->store.with_prefix(prefix),
                                          position - ranks.begin(),
                                          static_cast<int64_t>(ranks.size()),
                                          impl_->options,
                                          {},
                                          {},
                                          {},
                                          0});
  for (const int64_t r : ranks) impl->global_ranks.push_back(impl_->global_ranks[r]);
  impl->peers = impl_->peers;
  try {
    impl->group = make_group(impl->store, impl->rank, impl->size, impl->options);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw_failure(*impl_, "creating a sub-group", c10d_message(e));
  }
  return ProcessGroup(impl);
}

void ProcessGroup::shutdown() {
  barrier();
  impl_->store.add("tessera/left", 1);
  if (impl_->rank != 0) return;
  // Rank 0 hosts the TCP store: it stays until every rank has done its last store operation.
  const auto deadline = std::chrono::steady_clock::now() + impl_->options.timeout;
  while (impl_->store.add("tessera/left", 0) < impl_->size) {
    if (std::chrono::steady_clock::now() > deadline)
      throw Error("rank 0: not every rank reached the end of the run within the timeout");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace tessera::dist
