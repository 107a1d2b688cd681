#include "tessera/core/cpu_flags.h"

#include <fstream>

namespace tessera {

namespace {
// The flags of the first processor, each surrounded by spaces ("" if unknown); read once.
const std::string& flags_line() {
  static const std::string flags = [] {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line))
      if (line.rfind("flags", 0) == 0) return " " + line.substr(line.find(':') + 1) + " ";
    return std::string();
  }();
  return flags;
}
}  // namespace

bool cpu_lists_flag(const std::string& flag) {
  return !flag.empty() && flags_line().find(" " + flag + " ") != std::string::npos;
}

}  // namespace tessera
