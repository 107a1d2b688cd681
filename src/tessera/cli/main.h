// The `tessera` command: dispatches to one subcommand (train, eval, info, ...) and turns
// tessera::Error into a message and an exit code (1; 2 for usage errors).
#pragma once

namespace tessera::cli {

int main(int argc, char** argv);

}  // namespace tessera::cli
