// Who the other ranks are (host and process id), published in the rendezvous store, so that a
// failed collective can name the rank that died instead of only "connection closed by peer".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tessera::dist {

struct PeerInfo {
  std::string host;
  int64_t pid = 0;
  std::string address;  // where its Gloo transport is bound (empty: unknown)
};

PeerInfo this_process();
std::string encode(const PeerInfo& peer);
// Throws tessera::Error for text that encode() did not produce.
PeerInfo decode_peer(const std::string& text);

// The IPv4 address of network interface `iface` ("" if it has none or does not exist).
std::string interface_address(const std::string& iface);

// Whether the host at `address` answers a TCP connection attempt within `milliseconds`: accepted
// or refused both mean it is there; no answer, or no route, means it is not (link down, host
// gone, or a firewall dropping the attempt).
bool host_answers(const std::string& address, int milliseconds);

// "rank 1 (pid 4711) has exited" for each rank in `group_ranks` (global ranks, indexes into
// `peers`) whose process on this host is gone or a zombie; if none is, "rank 2 (host h2, address
// 10.0.0.2) does not answer: its host is unreachable" for each rank at another address whose host
// does not answer (host_answers, about a second at most); empty when none is known to be gone.
std::string describe_dead_peers(const std::vector<PeerInfo>& peers,
                                const std::vector<int64_t>& group_ranks);

}  // namespace tessera::dist
