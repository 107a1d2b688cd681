// An SDP run's plans: sdp_plan.json (the first), then sdp_plan_epoch<E>.json or
// sdp_plan_step<S>.json for every change, ordered by E or S (the change made once E epochs or S
// steps were done). A plan's `subnets` list, per worker,
// the unit indices it holds of each group; a group's size is one more than the largest index any
// worker holds (every unit has at least one holder).
#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>

#include "tessera/core/error.h"
#include "tessera/report/read_run.h"
#include "tessera/train/run_directory.h"

namespace tessera::report {
namespace {

namespace fs = std::filesystem;

SdpPlan plan_of(const nlohmann::json& json, const std::string& label, const std::string& path) {
  if (!json.is_object() || !json.contains("subnets") || !json["subnets"].is_array())
    throw Error(path + " is not an SDP plan (no 'subnets' list)");
  std::map<std::string, int64_t> group_size;
  for (const auto& subnet : json["subnets"])
    for (const auto& [group, units] : subnet.items())
      for (const auto& u : units)
        group_size[group] = std::max(group_size[group], u.get<int64_t>() + 1);
  SdpPlan plan;
  plan.label = label;
  std::map<std::string, int64_t> first_column;
  for (const auto& [group, size] : group_size) {
    first_column[group] = static_cast<int64_t>(plan.unit_labels.size());
    for (int64_t u = 0; u < size; ++u) {
      plan.unit_labels.push_back(group + ":" + std::to_string(u));
      plan.unit_groups.push_back(group);
    }
  }
  for (const auto& subnet : json["subnets"]) {
    std::vector<bool> held(plan.unit_labels.size(), false);
    for (const auto& [group, units] : subnet.items())
      for (const auto& u : units)
        held[static_cast<size_t>(first_column[group] + u.get<int64_t>())] = true;
    plan.held.push_back(std::move(held));
  }
  return plan;
}

}  // namespace

std::vector<SdpPlan> read_sdp_plans(const std::string& path) {
  std::vector<SdpPlan> plans;
  const std::string first = path + "/sdp_plan.json";
  if (!fs::exists(first)) return plans;
  try {
    plans.push_back(plan_of(train::read_json_file(first), "initial plan", first));
    // (is an epoch change, number, file)
    std::vector<std::tuple<bool, int64_t, std::string>> changes;
    const std::regex pattern(R"(sdp_plan_(epoch|step)(\d+)\.json)");
    for (const auto& entry : fs::directory_iterator(path)) {
      std::smatch match;
      const std::string file = entry.path().filename().string();
      if (std::regex_match(file, match, pattern))
        changes.emplace_back(match[1] == "epoch", std::stoll(match[2]), entry.path().string());
    }
    std::sort(changes.begin(), changes.end());
    for (const auto& [by_epoch, at, file] : changes)
      plans.push_back(plan_of(
          train::read_json_file(file),
          by_epoch ? "after epoch " + std::to_string(at) : "after step " + std::to_string(at),
          file));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": unexpected content in an SDP plan file: " + e.what());
  }
  return plans;
}

}  // namespace tessera::report
