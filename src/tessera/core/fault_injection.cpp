#include "tessera/core/fault_injection.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "tessera/core/error.h"

namespace tessera {
namespace {

struct Fault {
  int64_t rank = -1;  // -1: none
  int64_t step = 0;
};

Fault parse_fault() {
  const char* restart = std::getenv("TESSERA_RESTART_COUNT");
  if (restart != nullptr && std::string(restart) != "0") return {};
  const char* text = std::getenv("TESSERA_FAULT_KILL_AT");
  if (text == nullptr || *text == '\0') return {};
  Fault fault;
  long long rank = 0;
  long long step = 0;
  char tail = 0;
  if (std::sscanf(text, "%lld:%lld%c", &rank, &step, &tail) != 2 || rank < 0 || step < 1)
    throw UsageError("TESSERA_FAULT_KILL_AT must be RANK:STEP (a rank >= 0, a step >= 1), got '" +
                     std::string(text) + "'");
  fault.rank = rank;
  fault.step = step;
  return fault;
}

}  // namespace

void inject_fault_at_step(int64_t rank, int64_t step) {
  static const Fault fault = parse_fault();
  if (fault.rank != rank || fault.step != step) return;
  std::fprintf(stderr, "fault injection: rank %lld kills itself (SIGKILL) after step %lld\n",
               static_cast<long long>(rank), static_cast<long long>(step));
  std::fflush(stderr);
  ::kill(::getpid(), SIGKILL);
}

}  // namespace tessera
