// cpu_lists_flag reads /proc/cpuinfo's flags as whole words.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "tessera/core/cpu_flags.h"

TEST(CpuFlags, ListsWholeFlagsOnly) {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::stringstream text;
  text << cpuinfo.rdbuf();
  if (text.str().find("\nflags") == std::string::npos && text.str().rfind("flags", 0) != 0)
    GTEST_SKIP() << "no flags line in /proc/cpuinfo on this machine";
  EXPECT_TRUE(tessera::cpu_lists_flag("fpu"));  // every x86-64 CPU
  EXPECT_FALSE(tessera::cpu_lists_flag("fp"));  // a prefix of fpu is not a flag
  EXPECT_FALSE(tessera::cpu_lists_flag("no_such_flag"));
  EXPECT_FALSE(tessera::cpu_lists_flag(""));
}
