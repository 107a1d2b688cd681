// The subcommands of `tessera`. Each takes the arguments after its name and returns the exit code;
// errors are thrown (tessera::Error / UsageError) and reported by cli::main.
#pragma once

#include <string>
#include <vector>

namespace tessera::cli {

using Args = std::vector<std::string>;

int train_command(const Args& args);   // conventional (or --dist ddp|pipeline) training
int pnn_command(const Args& args);     // partitioned training with synthetic intermediate labels
int eval_command(const Args& args);    // evaluate a checkpoint on a data set
int export_command(const Args& args);  // write a checkpoint's model as a safetensors file
int info_command(const Args& args);    // version, libtorch, threads, BLAS, devices
int launch_command(const Args& args);  // start local workers of a distributed run
// Hidden: one partition of `tessera pnn`'s parallel schedule, started by pnn_command.
int pnn_worker_command(const Args& args);
// continue a prompt with a language model checkpoint
int generate_command(const Args& args);

}  // namespace tessera::cli
