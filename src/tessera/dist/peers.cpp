#include "tessera/dist/peers.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <fstream>
#include <sstream>
#include <thread>

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
  return {host_name(), static_cast<int64_t>(getpid()), ""};
}

std::string encode(const PeerInfo& peer) {
  return std::to_string(peer.pid) + " " + peer.host + " " +
         (peer.address.empty() ? "-" : peer.address);
}

PeerInfo decode_peer(const std::string& text) {
  std::istringstream in(text);
  PeerInfo peer;
  if (!(in >> peer.pid >> peer.host >> peer.address))
    throw Error("malformed peer record '" + text + "'");
  if (peer.address == "-") peer.address.clear();
  return peer;
}

std::string interface_address(const std::string& iface) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "";
  std::string found;
  for (ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr || entry->ifa_addr->sa_family != AF_INET) continue;
    if (iface != entry->ifa_name) continue;
    char text[INET_ADDRSTRLEN] = {};
    const auto* ip = reinterpret_cast<const sockaddr_in*>(entry->ifa_addr);
    if (inet_ntop(AF_INET, &ip->sin_addr, text, sizeof text) != nullptr) found = text;
    break;
  }
  freeifaddrs(list);
  return found;
}

bool host_answers(const std::string& address, int milliseconds) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  // Any port will do: a host that is there accepts or refuses; the discard port is rarely open.
  if (getaddrinfo(address.c_str(), "9", &hints, &found) != 0 || found == nullptr) return false;
  const int fd = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  bool answered = false;
  if (fd >= 0) {
    if (connect(fd, found->ai_addr, found->ai_addrlen) == 0) {
      answered = true;
    } else if (errno == ECONNREFUSED) {
      answered = true;
    } else if (errno == EINPROGRESS) {
      pollfd poll_fd{fd, POLLOUT, 0};
      if (poll(&poll_fd, 1, milliseconds) == 1) {
        int error = 0;
        socklen_t length = sizeof error;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
        answered = error == 0 || error == ECONNREFUSED;
      }
    }
    close(fd);
  }
  freeaddrinfo(found);
  return answered;
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

namespace {
// The peers at other addresses whose hosts do not answer, probed together.
std::string unreachable_peers(const std::vector<PeerInfo>& peers,
                              const std::vector<int64_t>& group_ranks) {
  constexpr int kProbeMilliseconds = 1000;
  const int64_t self = static_cast<int64_t>(getpid());
  std::string own_address;
  for (const auto& peer : peers)
    if (peer.pid == self && peer.host == host_name()) own_address = peer.address;
  std::vector<std::thread> probes;
  std::vector<char> answered(group_ranks.size(), 1);
  for (size_t i = 0; i < group_ranks.size(); ++i) {
    const int64_t rank = group_ranks[i];
    if (rank < 0 || rank >= static_cast<int64_t>(peers.size())) continue;
    const std::string& address = peers[rank].address;
    if (address.empty() || address == own_address || address.rfind("127.", 0) == 0) continue;
    probes.emplace_back([&answered, i, address] {
      answered[i] = host_answers(address, kProbeMilliseconds) ? 1 : 0;
    });
  }
  for (auto& probe : probes) probe.join();
  std::string text;
  for (size_t i = 0; i < group_ranks.size(); ++i) {
    if (answered[i]) continue;
    const PeerInfo& peer = peers[group_ranks[i]];
    text += (text.empty() ? "" : ", ") + std::string("rank ") + std::to_string(group_ranks[i]) +
            " (host " + peer.host + ", address " + peer.address +
            ") does not answer: its host is unreachable (link down, or the host is gone)";
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
    if (!text.empty()) return text;
    if (attempt + 1 == kTries) break;
    usleep(kPauseMicroseconds);
  }
  return unreachable_peers(peers, group_ranks);
}

}  // namespace tessera::dist
