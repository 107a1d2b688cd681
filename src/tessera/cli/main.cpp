#include "tessera/cli/main.h"

#include <cstring>
#include <iostream>

#include "tessera/cli/commands.h"
#include "tessera/core/error.h"
#include "tessera/core/malloc_tuning.h"
#include "tessera/metrics/memory_tracker.h"

namespace tessera::cli {
namespace {

struct Command {
  const char* name;
  int (*run)(const Args&);
  const char* summary;  // null: hidden from the usage (started by tessera itself)
};

const Command kCommands[] = {
    {"train", train_command, "train a model (conventional training)"},
    {"pnn", pnn_command, "partitioned training with synthetic intermediate labels (PNN/SIL)"},
    {"eval", eval_command, "evaluate a checkpoint (or safetensors file) on a data set"},
    {"export", export_command, "write a checkpoint's model as a safetensors file"},
    {"info", info_command, "show version, libtorch, threads, BLAS and devices"},
    {"launch", launch_command, "start N local workers: tessera launch -n N -- tessera train ..."},
    {"pnn-worker", pnn_worker_command, nullptr},
    {"generate", generate_command, "continue a prompt with a language model checkpoint"},
};

void print_usage(std::ostream& out) {
  out << "tessera " << TESSERA_VERSION
      << ": train neural networks in pieces\n\nusage: tessera <command> [flags]   "
         "(tessera <command> --help for its flags)\n\ncommands:\n";
  for (const auto& command : kCommands)
    if (command.summary != nullptr)
      out << "  " << command.name << std::string(10 - std::strlen(command.name), ' ')
          << command.summary << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  // Count tensor memory from the very first allocation.
  metrics::install_memory_tracker();
  keep_freed_memory_for_reuse();
  if (argc < 2) {
    print_usage(std::cerr);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    print_usage(std::cout);
    return 0;
  }
  if (name == "--version") {
    std::cout << "tessera " << TESSERA_VERSION << "\n";
    return 0;
  }
  const Args args(argv + 2, argv + argc);
  for (const auto& command : kCommands) {
    if (name != command.name) continue;
    try {
      return command.run(args);
    } catch (const UsageError& e) {
      std::cerr << "tessera " << name << ": error: " << e.what() << "\n";
      return 2;
    } catch (const Error& e) {
      std::cerr << "tessera " << name << ": error: " << e.what() << "\n";
      return 1;
    } catch (const c10::Error& e) {
      std::cerr << "tessera " << name << ": libtorch error: " << e.what_without_backtrace() << "\n";
      return 1;
    } catch (const std::exception& e) {
      std::cerr << "tessera " << name << ": error: " << e.what() << "\n";
      return 1;
    }
  }
  std::cerr << "tessera: unknown command '" << name << "'\n\n";
  print_usage(std::cerr);
  return 2;
}

}  // namespace tessera::cli
