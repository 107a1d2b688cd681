#include "tessera/dist/rendezvous.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <thread>

#include "tessera/core/error.h"

extern char** environ;

namespace tessera::dist {
namespace {

std::string lookup(const Environment& env, const std::string& name) {
  const auto it = env.find(name);
  return it == env.end() ? "" : it->second;
}

int64_t parse_int(const std::string& text, const std::string& name) {
  try {
    size_t used = 0;
    const int64_t value = std::stoll(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  throw UsageError(name + "='" + text + "' is not an integer");
}

// A flag's value if given (>= 0), else the environment variable, else `fallback` (< 0: required).
int64_t flag_or_env(int64_t flag, const Environment& env, const std::string& name, int64_t fallback,
                    const std::string& hint) {
  if (flag >= 0) return flag;
  const std::string text = lookup(env, name);
  if (!text.empty()) return parse_int(text, name);
  if (fallback >= 0) return fallback;
  throw UsageError(name + " is not set: " + hint);
}

// A socket address as text ("10.0.0.1", "fd00::2").
std::string numeric_host(const sockaddr* address, socklen_t length) {
  char text[NI_MAXHOST] = {};
  if (getnameinfo(address, length, text, sizeof text, nullptr, 0, NI_NUMERICHOST) != 0) return "?";
  return text;
}

std::string where(const Rendezvous& r) {
  if (!r.file.empty()) return "at " + r.file;
  return "at " + r.master_addr + ":" + std::to_string(r.master_port);
}

// Rank 0 waits, within one timeout in all, until every rank has claimed its place, polling a
// counter (a store `get` per rank would wait a whole timeout for each missing one), and names
// the ranks that did not come.
void wait_for_every_rank(Store& store, const Rendezvous& r) {
  const auto deadline = std::chrono::steady_clock::now() + r.group.timeout;
  while (store.add("tessera/joined", 0) < r.world_size) {
    if (std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    std::string missing;
    for (int64_t other = 1; other < r.world_size; ++other)
      if (store.add("tessera/claim/" + std::to_string(other), 0) == 0)
        missing += (missing.empty() ? "" : ", ") + std::to_string(other);
    throw Error("rank " + (missing.empty() ? std::string("?") : missing) +
                " did not join (or left) within " + std::to_string(r.group.timeout.count() / 1000) +
                " s: not all WORLD_SIZE=" + std::to_string(r.world_size) + " workers joined " +
                where(r) + "; check that every worker has the same WORLD_SIZE and was started");
  }
}

// Every worker states its world size and claims its rank; a mismatch would otherwise surface as
// a hang in the first collective.
void check_membership(Store& store, const Rendezvous& r) {
  const std::string rank = std::to_string(r.rank);
  if (store.add("tessera/claim/" + rank, 1) > 1)
    throw Error("rank " + rank +
                " is claimed by two workers (duplicate RANK, or a stale "
                "rendezvous file/store from an earlier run)");
  store.set("tessera/world/" + rank, std::to_string(r.world_size));
  store.add("tessera/joined", 1);
  if (r.rank == 0) wait_for_every_rank(store, r);
  // Rank 0 compares with everyone, the others with rank 0. A rank marks that it has read rank
  // 0's value, so that rank 0 (whose exit takes the TCP store down) does not leave before a
  // mismatching rank has learnt why.
  for (int64_t other = 0; other < r.world_size; ++other) {
    if (other == r.rank || (r.rank != 0 && other != 0)) continue;
    std::string theirs;
    try {
      theirs = store.get("tessera/world/" + std::to_string(other));
    } catch (const Error&) {
      throw Error("rank " + std::to_string(other) + " did not join (or left) within " +
                  std::to_string(r.group.timeout.count() / 1000) +
                  " s: not all WORLD_SIZE=" + std::to_string(r.world_size) + " workers joined " +
                  where(r) + "; check that every worker has the same WORLD_SIZE and was started");
    }
    if (r.rank != 0) store.set("tessera/checked/" + rank, "1");
    if (theirs == std::to_string(r.world_size)) continue;
    if (r.rank == 0) {
      try {
        store.get("tessera/checked/" + std::to_string(other));
      } catch (const Error&) {
        // It has gone already; the message below is still right.
      }
    }
    throw Error("rank " + rank + " was started with WORLD_SIZE=" + std::to_string(r.world_size) +
                " but rank " + std::to_string(other) + " with WORLD_SIZE=" + theirs +
                ": start every worker with the same world size");
  }
}

}  // namespace

Environment process_environment() {
  Environment env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string text = *entry;
    const size_t equals = text.find('=');
    if (equals != std::string::npos) env[text.substr(0, equals)] = text.substr(equals + 1);
  }
  return env;
}

int find_free_port(const std::string& address) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error("cannot open a socket to find a free port");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  if (inet_pton(AF_INET, address.c_str(), &addr.sin_addr) != 1) {
    close(fd);
    throw UsageError("'" + address + "' is not an IPv4 address");
  }
  socklen_t length = sizeof addr;
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0;
  close(fd);
  if (!ok) throw Error("cannot find a free port on " + address);
  return ntohs(addr.sin_port);
}

bool is_loopback(const std::string& address) {
  return address == "localhost" || address == "::1" || address.rfind("127.", 0) == 0;
}

std::string route_source_address(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  // Any port will do: connecting a UDP socket only picks the route and the source address.
  const int status = getaddrinfo(host.c_str(), "9", &hints, &found);
  if (status != 0) throw Error("cannot resolve '" + host + "': " + gai_strerror(status));
  const std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(found, freeaddrinfo);
  std::string failures;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = socket(a->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      failures += std::string(failures.empty() ? "" : "; ") + "socket: " + std::strerror(errno);
      continue;
    }
    sockaddr_storage local{};
    socklen_t length = sizeof local;
    const bool ok = connect(fd, a->ai_addr, a->ai_addrlen) == 0 &&
                    getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) == 0;
    const int error = errno;
    close(fd);
    if (ok) return numeric_host(reinterpret_cast<const sockaddr*>(&local), length);
    failures += std::string(failures.empty() ? "" : "; ") +
                numeric_host(a->ai_addr, a->ai_addrlen) + ": " + std::strerror(error);
  }
  throw Error("no route from this host to '" + host + "' (" + failures + ")");
}

GlooBinding choose_gloo_binding(const std::string& iface, const std::string& master_addr,
                                int64_t world_size, int64_t local_world_size,
                                const RouteLookup& route) {
  if (!iface.empty())
    return {iface, "", "interface " + iface + " (--dist-iface or GLOO_SOCKET_IFNAME)"};
  if (world_size == 1 || local_world_size == world_size)
    return {"", "127.0.0.1",
            "loopback: all " + std::to_string(world_size) +
                " workers run on this host (LOCAL_WORLD_SIZE == WORLD_SIZE)"};
  if (is_loopback(master_addr))
    return {"", "127.0.0.1", "loopback: MASTER_ADDR=" + master_addr + " is a loopback address"};
  try {
    const std::string source = route(master_addr);
    return {"", source,
            source + ": this host's address on the route to MASTER_ADDR=" + master_addr};
  } catch (const Error& e) {
    throw Error("cannot choose the address the Gloo transport binds to: " + std::string(e.what()) +
                ". MASTER_ADDR must be an address of rank 0's host that " +
                "this host can reach; or name the interface with --dist-iface or " +
                "GLOO_SOCKET_IFNAME");
  }
}

Rendezvous resolve_rendezvous(const DistConfig& config, const Environment& env,
                              const RouteLookup& route) {
  require(config.timeout_seconds > 0 && std::isfinite(config.timeout_seconds),
          "--dist-timeout must be a positive number of seconds");
  const bool file_init = config.init.rfind("file:", 0) == 0;
  require(config.init == "env" || file_init,
          "--dist-init must be 'env' or 'file:PATH', got '" + config.init + "'");
  Rendezvous r;
  const std::string hint = "start the workers with `tessera launch` or torchrun";
  r.world_size = flag_or_env(config.world_size, env, "WORLD_SIZE", -1, hint);
  require(r.world_size >= 1, "WORLD_SIZE must be at least 1, got " + std::to_string(r.world_size));
  r.rank = flag_or_env(config.rank, env, "RANK", r.world_size == 1 ? 0 : -1, hint);
  require(r.rank >= 0 && r.rank < r.world_size,
          "RANK=" + std::to_string(r.rank) +
              " is outside [0, WORLD_SIZE=" + std::to_string(r.world_size) + ")");
  r.local_rank = flag_or_env(config.local_rank, env, "LOCAL_RANK", r.rank, hint);
  if (!lookup(env, "LOCAL_WORLD_SIZE").empty()) {
    r.local_world_size = parse_int(lookup(env, "LOCAL_WORLD_SIZE"), "LOCAL_WORLD_SIZE");
    require(r.local_world_size >= 1 && r.local_world_size <= r.world_size,
            "LOCAL_WORLD_SIZE=" + std::to_string(r.local_world_size) +
                " is outside [1, WORLD_SIZE=" + std::to_string(r.world_size) + "]");
  }
  r.group.timeout = std::chrono::milliseconds(static_cast<int64_t>(config.timeout_seconds * 1e3));
  r.group.device = config.device;
  r.group.iface = config.iface.empty() ? lookup(env, "GLOO_SOCKET_IFNAME") : config.iface;
  if (file_init) {
    r.file = config.init.substr(5);
    require(!r.file.empty(), "--dist-init file:PATH needs a path");
    r.group.address = "127.0.0.1";
    return r;
  }
  r.master_addr = lookup(env, "MASTER_ADDR");
  require(!r.master_addr.empty(), "MASTER_ADDR is not set: " + hint);
  const int64_t port = flag_or_env(-1, env, "MASTER_PORT", -1, hint);
  require(port >= 1 && port <= 65535,
          "MASTER_PORT must lie in 1..65535, got " + std::to_string(port));
  r.master_port = static_cast<int>(port);
  r.agent_store = lookup(env, "TORCHELASTIC_USE_AGENT_STORE") == "True";
  if (r.agent_store && !lookup(env, "TORCHELASTIC_RESTART_COUNT").empty())
    r.restart_count = lookup(env, "TORCHELASTIC_RESTART_COUNT");
  const GlooBinding binding =
      choose_gloo_binding(r.group.iface, r.master_addr, r.world_size, r.local_world_size, route);
  r.group.iface = binding.iface;
  r.group.address = binding.address.empty() ? r.group.address : binding.address;
  r.binding_reason = binding.reason;
  return r;
}

ProcessGroup init_process_group(const Rendezvous& r) {
  Store store = [&] {
    if (!r.file.empty()) return Store::file(r.file, r.world_size, r.group.timeout);
    // Under torchrun's agent store every worker is a client, and keys live under the attempt.
    const bool server = r.rank == 0 && !r.agent_store;
    Store tcp = Store::tcp(r.master_addr, r.master_port, server, r.world_size, r.group.timeout);
    return r.agent_store ? tcp.with_prefix("/worker/attempt_" + r.restart_count) : tcp;
  }();
  check_membership(store, r);
  return ProcessGroup(store, r.rank, r.world_size, r.group);
}

}  // namespace tessera::dist
