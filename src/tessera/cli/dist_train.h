// `tessera train --dist ddp|pipeline`: the distributed baselines, one process per worker (started
// by `tessera launch` or torchrun). Rank 0 evaluates, logs, checkpoints and writes summary.json
// with every rank's memory and communication.
#pragma once

#include "tessera/cli/commands.h"
#include "tessera/cli/options.h"

namespace tessera::cli {

// `args` are the (expanded) arguments recorded in config.json.
int train_distributed(const Args& args, CommonOptions& options, const DistFlags& flags,
                      bool resume);

}  // namespace tessera::cli
