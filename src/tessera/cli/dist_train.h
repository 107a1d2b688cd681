// `tessera train --dist ddp|pipeline|sdp`: one worker per process (started by `tessera launch` or
// torchrun). Maps the flags to the run's setup (dist/ddp_run, dist/pipeline_run, sdp/sdp_run),
// joins the process group, and on rank 0 writes config.json and summary.json and prints the
// result.
#pragma once

#include "tessera/cli/commands.h"
#include "tessera/cli/options.h"

namespace tessera::cli {

// `args` are the (expanded) arguments recorded in config.json; `mode` is not DistMode::None.
int train_distributed(const Args& args, CommonOptions& options, const DistFlags& flags,
                      DistMode mode, bool resume);

}  // namespace tessera::cli
