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
};

PeerInfo this_process();
std::string encode(const PeerInfo& peer);
// Throws tessera::Error for text that encode() did not produce.
PeerInfo decode_peer(const std::string& text);

// "rank 1 (pid 4711) has exited" for each rank in `group_ranks` (global ranks, indexes into
// `peers`) whose process on this host is gone or a zombie; empty when none is known to be dead
// (peers on other hosts cannot be checked).
std::string describe_dead_peers(const std::vector<PeerInfo>& peers,
                                const std::vector<int64_t>& group_ranks);

}  // namespace tessera::dist
