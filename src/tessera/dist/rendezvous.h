// Joining a run: rank, world size and the rendezvous store from torchrun's environment (RANK,
// WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, TORCHELASTIC_USE_AGENT_STORE) or a file
// shared by the workers of one host, then the world ProcessGroup.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "tessera/dist/process_group.h"

namespace tessera::dist {

struct DistConfig {
  // "env": TCP store at MASTER_ADDR:MASTER_PORT hosted by rank 0 (or by torchrun's agent).
  // "file:PATH": a FileStore at PATH (one host; ranks from RANK/WORLD_SIZE or the fields below).
  std::string init = "env";
  int64_t rank = -1;        // -1: $RANK
  int64_t world_size = -1;  // -1: $WORLD_SIZE
  int64_t local_rank = -1;  // -1: $LOCAL_RANK, else rank
  std::string iface;        // Gloo interface; empty: $GLOO_SOCKET_IFNAME, else bind to an address
  double timeout_seconds = 300;
  std::string device = "cpu";
};

// The environment as a map (tests pass their own; the CLI passes the process environment).
using Environment = std::map<std::string, std::string>;
Environment process_environment();

// Rank, world size and where to meet, resolved from config and environment.
struct Rendezvous {
  int64_t rank = 0;
  int64_t world_size = 1;
  int64_t local_rank = 0;
  int64_t local_world_size = -1;  // $LOCAL_WORLD_SIZE; -1: not given
  std::string master_addr;        // env init only
  int master_port = 0;
  bool agent_store = false;  // torchrun's agent hosts the store; rank 0 is a client too
  std::string restart_count = "0";
  std::string file;            // file init only
  GroupOptions group;          // group.iface / group.address: see choose_gloo_binding
  std::string binding_reason;  // why the Gloo device binds where it does (env init)
};

// The address this host sends from to reach `host` (a name or an IPv4/IPv6 address): the source
// address the kernel picks for a UDP socket connected to it (no packet is sent). For an address
// of this host that is the address itself (127.0.0.1 for the loopback range). Throws
// tessera::Error if `host` does not resolve or no route leads to it.
std::string route_source_address(const std::string& host);
using RouteLookup = std::function<std::string(const std::string& host)>;

// What the Gloo device of a worker binds to: an interface, else an address.
struct GlooBinding {
  std::string iface;
  std::string address;
  std::string reason;  // why, in words ("--dist-iface", "the route to MASTER_ADDR=...", ...)
};

// The binding for a worker, first rule that applies:
// 1. `iface` (--dist-iface, else $GLOO_SOCKET_IFNAME) if given;
// 2. 127.0.0.1 if every worker runs on this host (local_world_size == world_size, or a world of
//    one);
// 3. 127.0.0.1 if the master is a loopback address (every node is on this machine);
// 4. the source address of the route to the master, `route(master_addr)`: on the master's own
//    node that is the master address itself, on the others the address of the interface that
//    reaches it. A failed lookup becomes an Error naming MASTER_ADDR and the overrides.
// Pure but for `route`; local_world_size < 0 means unknown.
GlooBinding choose_gloo_binding(const std::string& iface, const std::string& master_addr,
                                int64_t world_size, int64_t local_world_size,
                                const RouteLookup& route);

// Throws UsageError naming the variable or flag that is missing or malformed (RANK outside
// [0, WORLD_SIZE), a port outside 1..65535, an unknown init method). With env init, chooses
// the Gloo binding (choose_gloo_binding, looking routes up with `route`).
Rendezvous resolve_rendezvous(const DistConfig& config, const Environment& env,
                              const RouteLookup& route = route_source_address);

// Meets the other workers and connects them. Checks that every worker was started with the same
// world size and that no rank is claimed twice. Throws tessera::Error with the reason (busy port,
// unreachable master, missing workers, mismatching WORLD_SIZE) within the timeout.
ProcessGroup init_process_group(const Rendezvous& rendezvous);

// A TCP port that was free on `address` a moment ago (bind to port 0, read it, close).
int find_free_port(const std::string& address = "127.0.0.1");

// True for 127.x.x.x, ::1 and "localhost".
bool is_loopback(const std::string& address);

}  // namespace tessera::dist
