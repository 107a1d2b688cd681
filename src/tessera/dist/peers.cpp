#include "tessera/dist/peers.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "tessera/core/error.h"

namespace tessera::dist {
namespace {

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "unknown-host";
  return name;
}

// A process counts as gone when /proc has no entry for it or it is a zombie (killed, not yet
// reaped by its launcher).
bool process_gone(int64_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string line;
  std::getline(stat, line);
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size()) return false;
  const char state = line[paren + 2];
  return state == 'Z' || state == 'X';
}

}  // namespace

PeerInfo this_process() {
  return {host_name(), static_cast<int64_t>(getpid())};
}

std::string encode(const PeerInfo& peer) {
  return std::to_string(peer.pid) + " " + peer.host;
}

PeerInfo decode_peer(const std::string& text) {
  std::istringstream in(text);
  PeerInfo peer;
  if (!(in >> peer.pid >> peer.host)) throw Error("malformed peer record '" + text + "'");
  return peer;
}

namespace {
std::string dead_peers_now(const std::vector<PeerInfo>& peers,
                           const std::vector<int64_t>& group_ranks) {
  const PeerInfo self = this_process();
  std::string text;
  for (const int64_t rank : group_ranks) {
    if (rank < 0 || rank >= static_cast<int64_t>(peers.size())) continue;
    const PeerInfo& peer = peers[rank];
    if (peer.host != self.host || peer.pid == self.pid || !process_gone(peer.pid)) continue;
    text += (text.empty() ? "" : ", ") + std::string("rank ") + std::to_string(rank) + " (pid " +
            std::to_string(peer.pid) + ") has exited";
  }
  return text;
}
}  // namespace

std::string describe_dead_peers(const std::vector<PeerInfo>& peers,
                                const std::vector<int64_t>& group_ranks) {
  // A killed peer's sockets close while the kernel is still tearing the process down, before
  // /proc shows it as a zombie: give it a moment before concluding that nobody died.
  constexpr int kTries = 20;
  constexpr useconds_t kPauseMicroseconds = 50 * 1000;
  for (int attempt = 0;; ++attempt) {
    std::string text = dead_peers_now(peers, group_ranks);
    if (!text.empty() || attempt + 1 == kTries) return text;
    usleep(kPauseMicroseconds);
  }
}

}  // namespace tessera::dist
