// Runs the ranks of a process group as threads of the test, meeting through a FileStore in a
// fresh temporary directory (no ports, so parallel test runs cannot collide).
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <exception>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "../test_support.h"
#include "tessera/dist/process_group.h"

namespace tessera::test {

// A FileStore path in a fresh directory of its own, <temp>/tessera_dist_<name>_<pid>.
inline std::string fresh_store_path(const std::string& name) {
  return tessera::testing::fresh_dir("dist_" + name) + "/store";
}

// Calls body(group) on `world` threads, one per rank. Returns false (and the test should skip) if
// the group could not be formed; failures inside `body` are rethrown on the calling thread.
inline bool run_ranks(int64_t world, const std::string& name,
                      const std::function<void(dist::ProcessGroup&)>& body,
                      double timeout_seconds = 30) {
  const std::string path = fresh_store_path(name);
  std::vector<std::exception_ptr> errors(world);
  std::atomic<bool> connected_all{true};
  std::vector<std::thread> threads;
  for (int64_t rank = 0; rank < world; ++rank) {
    threads.emplace_back([&, rank] {
      dist::GroupOptions options;
      options.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));
      std::optional<dist::ProcessGroup> group;
      try {
        dist::Store store =
            dist::Store::file(path, world, std::chrono::milliseconds(options.timeout));
        group.emplace(store, rank, world, options);
      } catch (...) {
        connected_all = false;
        errors[rank] = std::current_exception();
        return;
      }
      try {
        body(*group);
      } catch (...) {
        errors[rank] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  if (!connected_all) return false;
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  return true;
}

}  // namespace tessera::test
