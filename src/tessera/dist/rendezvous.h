// Joining a run: rank, world size and the rendezvous store from torchrun's environment (RANK,
// WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, TORCHELASTIC_USE_AGENT_STORE) or a file
// shared by the workers of one host, then the world ProcessGroup.
#pragma once

#include <cstdint>
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
  std::string master_addr;  // env init only
  int master_port = 0;
  bool agent_store = false;  // torchrun's agent hosts the store; rank 0 is a client too
  std::string restart_count = "0";
  std::string file;  // file init only
  GroupOptions group;
};

// Throws UsageError naming the variable or flag that is missing or malformed (RANK outside
// [0, WORLD_SIZE), a port outside 1..65535, an unknown init method).
Rendezvous resolve_rendezvous(const DistConfig& config, const Environment& env);

// Meets the other workers and connects them. Checks that every worker was started with the same
// world size and that no rank is claimed twice. Throws tessera::Error with the reason (busy port,
// unreachable master, missing workers, mismatching WORLD_SIZE) within the timeout.
ProcessGroup init_process_group(const Rendezvous& rendezvous);

// A TCP port that was free on `address` a moment ago (bind to port 0, read it, close).
int find_free_port(const std::string& address = "127.0.0.1");

// True for 127.x.x.x, ::1 and "localhost": the workers then bind Gloo to the loopback device.
bool is_loopback(const std::string& address);

}  // namespace tessera::dist
