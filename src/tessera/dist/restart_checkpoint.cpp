#include "tessera/dist/restart_checkpoint.h"

#include <cstdlib>
#include <filesystem>
#include <regex>

#include "tessera/core/error.h"
#include "tessera/train/checkpoint.h"
#include "tessera/train/run_directory.h"

namespace tessera::dist {
namespace {

std::string restart_dir(const std::string& run_dir) {
  return run_dir + "/restart";
}

std::string worker_file(const std::string& run_dir, int64_t rank, int64_t step) {
  return restart_dir(run_dir) + "/rank" + std::to_string(rank) + ".step" + std::to_string(step) +
         ".pt";
}

// This worker's files (checkpoints and side files) of steps before `step`: superseded once
// latest.json names `step`.
void remove_older(const std::string& run_dir, int64_t rank, int64_t step) {
  const std::regex name("rank" + std::to_string(rank) + "\\.step([0-9]+)(\\.[a-z]+)?\\.pt");
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(restart_dir(run_dir), error)) {
    std::smatch match;
    const std::string file = entry.path().filename().string();
    if (std::regex_match(file, match, name) && std::stoll(match[1].str()) < step)
      std::filesystem::remove(entry.path(), error);
  }
}

}  // namespace

void save_worker_checkpoint(ProcessGroup& group, const std::string& run_dir,
                            torch::nn::Module& model, torch::optim::Optimizer* optimizer,
                            const nlohmann::json& meta) {
  const int64_t step = meta.at("step").get<int64_t>();
  std::filesystem::create_directories(restart_dir(run_dir));
  train::save_checkpoint(worker_file(run_dir, group.rank(), step), model, optimizer, meta);
  group.barrier();  // every worker's file of `step` is in place
  if (group.rank() == 0)
    train::write_json_file(restart_dir(run_dir) + "/latest.json",
                           {{"step", step}, {"workers", group.size()}});
  group.barrier();  // latest.json names `step`: the older sets are no longer needed
  remove_older(run_dir, group.rank(), step);
}

std::string worker_side_file(const std::string& run_dir, int64_t rank, int64_t step,
                             const std::string& kind) {
  return restart_dir(run_dir) + "/rank" + std::to_string(rank) + ".step" + std::to_string(step) +
         "." + kind + ".pt";
}

std::string latest_worker_checkpoint(const std::string& run_dir, int64_t rank) {
  const std::string latest = restart_dir(run_dir) + "/latest.json";
  if (!std::filesystem::exists(latest)) return {};
  const int64_t step = train::read_json_file(latest).at("step").get<int64_t>();
  const std::string file = worker_file(run_dir, rank, step);
  if (!std::filesystem::exists(file))
    throw Error("restart: " + latest + " names step " + std::to_string(step) + " but " + file +
                " is missing (was the run started with another number of workers?)");
  return file;
}

void remove_worker_checkpoints(const std::string& run_dir) {
  std::error_code error;
  std::filesystem::remove_all(restart_dir(run_dir), error);
  if (error) throw Error("cannot remove " + restart_dir(run_dir) + ": " + error.message());
}

namespace {
int64_t env_count(const char* tessera_name, const char* torch_name) {
  for (const char* name : {tessera_name, torch_name}) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') continue;
    char* end = nullptr;
    const long long count = std::strtoll(value, &end, 10);
    require(*end == '\0' && count >= 0,
            std::string(name) + " must be a non-negative integer, got '" + value + "'");
    return count;
  }
  return 0;
}
}  // namespace

int64_t restart_count() {
  return env_count("TESSERA_RESTART_COUNT", "TORCHELASTIC_RESTART_COUNT");
}

bool restarts_allowed() {
  return env_count("TESSERA_MAX_RESTARTS", "TORCHELASTIC_MAX_RESTARTS") > 0;
}

}  // namespace tessera::dist
