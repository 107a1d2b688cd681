// Per-worker checkpoints for restarts (`tessera launch --max-restarts`), for runs whose workers
// hold different state: SDP's subnetworks, the pipeline's stages. Every worker saves its own
// model, optimizer state and metadata as <run_dir>/restart/rank<R>.step<S>.pt; once every worker
// has written step S, rank 0 records S in <run_dir>/restart/latest.json, and only then does each
// worker remove its older files. A worker killed at any moment leaves one complete set behind.
// The workers must share <run_dir>'s file system (one host, or a shared directory).
#pragma once

#include <cstdint>
#include <string>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "tessera/dist/process_group.h"

namespace tessera::dist {

// Collective: every worker of `group` calls it at the same step with meta["step"] set.
void save_worker_checkpoint(ProcessGroup& group, const std::string& run_dir,
                            torch::nn::Module& model, torch::optim::Optimizer* optimizer,
                            const nlohmann::json& meta);

// A file worker `rank` saves beside its checkpoint of `step` (SDP's kept entries: kind "kept"):
// <run_dir>/restart/rank<R>.step<S>.<kind>.pt, removed with the checkpoint. Written before
// save_worker_checkpoint, it is there whenever latest.json names the step.
std::string worker_side_file(const std::string& run_dir, int64_t rank, int64_t step,
                             const std::string& kind);

// The file worker `rank` resumes from: the complete set latest.json names; empty if the run has
// none yet (a failure before the first checkpoint: the run starts again from scratch).
std::string latest_worker_checkpoint(const std::string& run_dir, int64_t rank);

// Removes the run's per-worker checkpoints (a fresh run must not resume from an older run's).
void remove_worker_checkpoints(const std::string& run_dir);

// The attempt this worker belongs to: TESSERA_RESTART_COUNT (tessera launch --max-restarts) or
// TORCHELASTIC_RESTART_COUNT (torchrun); 0 in the first attempt or without a launcher.
int64_t restart_count();
// Whether the launcher will restart a failed run (TESSERA_MAX_RESTARTS or
// TORCHELASTIC_MAX_RESTARTS above 0): then the run keeps what a restart needs.
bool restarts_allowed();

}  // namespace tessera::dist
