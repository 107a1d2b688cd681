#include "tessera/sdp/mask_plan.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <tuple>

#include "tessera/core/error.h"
#include "tessera/core/seeding.h"
#include "tessera/core/shape.h"
#include "tessera/models/staged_model.h"

namespace tessera::sdp {
namespace {

bool masked_at(models::UnitKind kind, Level level) {
  return (kind == models::UnitKind::Branch) == (level == Level::Block);
}

// std::shuffle and the std distributions differ between standard libraries; the plan must not.
void seeded_shuffle(std::vector<size_t>& items, std::mt19937_64& rng) {
  for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[rng() % i]);
}

// What earlier assignments left behind, carried from one group of units to the next.
struct History {
  explicit History(int64_t workers)
      : total(static_cast<size_t>(workers), 0),
        together(static_cast<size_t>(workers * workers), 0) {}
  std::vector<int64_t> total;     // per worker: weight held so far
  std::vector<int64_t> together;  // per pair of workers: units they hold together
};

// Gives each unit to k workers, chosen one at a time: the least `load` first (a unit adds
// `weights[unit]` to each holder's load), then the least weight held so far, then the fewest units
// already shared with the unit's other holders (in this group of units, then in all), then a
// seeded random priority. Heaviest units
// first (equal weights in seeded random order), so loads end up as even as the unit sizes allow;
// and holder sets vary as much as they can, so that every unit is trained alongside many
// different others rather than the workers splitting into fixed teams whose parts of the network
// never meet before assembly (measured: teams cost the assembled resnet 10 points, see
// docs/results.md).
std::vector<WorkerSet> assign_units(const std::vector<int64_t>& weights, int64_t k,
                                    std::vector<int64_t>& load, History& history,
                                    std::mt19937_64& rng) {
  const auto workers = static_cast<int64_t>(load.size());
  std::vector<size_t> order(weights.size());
  std::iota(order.begin(), order.end(), 0);
  seeded_shuffle(order, rng);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return weights[a] > weights[b]; });
  std::vector<WorkerSet> holders(weights.size(), 0);
  std::vector<int64_t> together_here(static_cast<size_t>(workers * workers), 0);
  for (const size_t unit : order) {
    std::vector<uint64_t> random(static_cast<size_t>(workers));
    for (auto& r : random) r = rng();
    std::vector<int64_t> chosen;
    for (int64_t j = 0; j < k; ++j) {
      auto priority = [&](int64_t w) {
        int64_t shared_here = 0;  // in this group: sharing here makes subnetworks identical
        int64_t shared = 0;
        for (const int64_t c : chosen) {
          shared_here += together_here[c * workers + w];
          shared += history.together[c * workers + w];
        }
        // Totals that differ by less than half a unit count as equal, so that a slightly
        // lighter branch (a downsampling block's) does not pin its holders together later on.
        const int64_t whole_units = (history.total[w] + weights[unit] / 2) / weights[unit];
        return std::make_tuple(load[w], whole_units, shared_here, shared, history.total[w],
                               random[w]);
      };
      int64_t best = -1;
      for (int64_t w = 0; w < workers; ++w)
        if (!(holders[unit] >> w & 1) && (best < 0 || priority(w) < priority(best))) best = w;
      for (const int64_t c : chosen) {
        for (auto* together : {&together_here, &history.together}) {
          ++(*together)[c * workers + best];
          ++(*together)[best * workers + c];
        }
      }
      chosen.push_back(best);
      holders[unit] |= WorkerSet{1} << best;
      load[best] += weights[unit];
      history.total[best] += weights[unit];
    }
  }
  return holders;
}

// The branches grouped by kind, in model order: same output shape and same tensors (names past
// the stage prefix). A CNN's groups are its resolution levels, a ViT's its attention and its MLP
// sublayers. Balancing each kind on its own keeps activation memory even as well as compute (a
// first-level branch holds 4x the activations of a third-level one at equal FLOPs), and gives
// every ViT worker attention sublayers, not only MLPs that never mix tokens.
std::vector<std::vector<size_t>> branches_by_kind(
    const models::ModelConfig& model, const std::vector<const models::UnitGroup*>& branches) {
  const models::Architecture& arch = models::architecture(model.arch);
  std::vector<std::pair<Shape, std::set<std::string>>> kinds;
  std::vector<std::vector<size_t>> groups;
  for (size_t i = 0; i < branches.size(); ++i) {
    std::set<std::string> tensors;
    for (const auto& slice : branches[i]->slices)
      tensors.insert(slice.name.substr(slice.name.find('.') + 1));
    const auto kind = std::make_pair(arch.boundary_shape(model, branches[i]->stage + 1), tensors);
    const auto it = std::find(kinds.begin(), kinds.end(), kind);
    if (it == kinds.end()) {
      kinds.push_back(kind);
      groups.push_back({i});
    } else {
      groups[static_cast<size_t>(it - kinds.begin())].push_back(i);
    }
  }
  return groups;
}

// Forward FLOPs per sample of each branch: what a worker pays for holding it in step time and,
// about proportionally, in activation memory (a later level's branches have 4x the parameters
// but the same FLOPs and half the activations, so balancing parameters would pile the
// activation-heavy early branches onto a few workers).
std::vector<int64_t> branch_flops(const models::ModelConfig& model,
                                  const std::vector<const models::UnitGroup*>& branches) {
  const models::Architecture& arch = models::architecture(model.arch);
  std::vector<int64_t> flops;
  for (const auto* branch : branches) {
    models::ModelConfig without = model;
    without.subnet[branch->name] = {};
    flops.push_back(arch.stage_forward_flops(model, branch->stage) -
                    arch.stage_forward_flops(without, branch->stage));
  }
  return flops;
}

int64_t holders_per_unit(const PlanConfig& config) {
  require(config.workers >= 1 && config.workers <= kMaxWorkers,
          "sdp: the number of workers must be in [1, " + std::to_string(kMaxWorkers) + "], got " +
              std::to_string(config.workers));
  require(config.coverage > 0.0 && config.coverage <= 1.0,
          "sdp: --coverage must be in (0, 1], got " + std::to_string(config.coverage));
  const double k = config.coverage * static_cast<double>(config.workers);
  const auto rounded = static_cast<int64_t>(std::llround(k));
  require(std::abs(k - static_cast<double>(rounded)) < 1e-6 && rounded >= 1,
          "sdp: coverage " + std::to_string(config.coverage) + " on " +
              std::to_string(config.workers) + " workers would hold each unit on " +
              std::to_string(k) + " workers; coverage * workers must be a whole number (e.g. " +
              std::to_string(config.workers / 2 > 0 ? config.workers / 2 : 1) + "/" +
              std::to_string(config.workers) + ")");
  return rounded;
}

}  // namespace

Level parse_level(const std::string& name) {
  if (name == "block") return Level::Block;
  if (name == "neuron") return Level::Neuron;
  throw UsageError("--sdp-level must be block or neuron, got '" + name + "'");
}

const char* to_string(Level level) {
  return level == Level::Block ? "block" : "neuron";
}

int64_t count_workers(WorkerSet set) {
  return __builtin_popcountll(set);
}

std::vector<int64_t> worker_list(WorkerSet set) {
  std::vector<int64_t> workers;
  for (int64_t w = 0; w < kMaxWorkers; ++w)
    if (set >> w & 1) workers.push_back(w);
  return workers;
}

WorkerSet MaskPlan::all_workers() const {
  return (WorkerSet{1} << config.workers) - 1;
}

WorkerSet MaskPlan::unit_holders(const std::string& name, int64_t unit) const {
  auto it = holders.find(name);
  return it == holders.end() ? all_workers() : it->second.at(static_cast<size_t>(unit));
}

models::Subnet MaskPlan::subnet(int64_t worker) const {
  models::Subnet subnet;
  if (holders_per_unit == config.workers) return subnet;  // everyone holds everything
  for (const auto& [name, sets] : holders) {
    std::vector<int64_t>& held = subnet[name];
    for (size_t u = 0; u < sets.size(); ++u)
      if (sets[u] >> worker & 1) held.push_back(static_cast<int64_t>(u));
  }
  return subnet;
}

MaskPlan make_mask_plan(const models::ModelConfig& model, const PlanConfig& config) {
  MaskPlan plan;
  plan.config = config;
  plan.holders_per_unit = holders_per_unit(config);
  plan.groups = models::architecture(model.arch).unit_groups(model);
  const int64_t w = config.workers;
  const int64_t k = plan.holders_per_unit;

  std::vector<const models::UnitGroup*> masked;
  for (const auto& g : plan.groups)
    if (masked_at(g.kind, config.level)) masked.push_back(&g);
  require(!masked.empty(), "sdp: model '" + model.arch + "' has no " + to_string(config.level) +
                               "-level units" +
                               (config.level == Level::Block ? " (no residual branches); use "
                                                               "--sdp-level neuron"
                                                             : ""));
  std::mt19937_64 rng(config.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(w) * 1000003 +
                      static_cast<uint64_t>(k));
  if (config.level == Level::Block) {
    require(static_cast<int64_t>(masked.size()) * k >= w,
            "sdp: " + std::to_string(masked.size()) + " residual branches held " +
                std::to_string(k) + " times cannot give each of " + std::to_string(w) +
                " workers one; raise --coverage or use fewer workers");
    // Load counted in FLOPs, balanced kind by kind; each kind's remainder goes to the workers
    // with the least so far.
    const std::vector<int64_t> flops = branch_flops(model, masked);
    History history(w);
    for (const std::vector<size_t>& kind : branches_by_kind(model, masked)) {
      std::vector<int64_t> weights;
      for (const size_t i : kind) weights.push_back(flops[i]);
      std::vector<int64_t> load(static_cast<size_t>(w), 0);
      const auto sets = assign_units(weights, k, load, history, rng);
      for (size_t j = 0; j < kind.size(); ++j) plan.holders[masked[kind[j]]->name] = {sets[j]};
    }
  } else {
    History history(w);
    for (const auto* g : masked) {
      require(g->size * k >= w, "sdp: group '" + g->name + "' has " + std::to_string(g->size) +
                                    " units; held " + std::to_string(k) + " times they cannot " +
                                    "give each of " + std::to_string(w) +
                                    " workers one (its subnetwork would be cut)");
      std::vector<int64_t> load(static_cast<size_t>(w), 0);
      plan.holders[g->name] = assign_units(std::vector<int64_t>(static_cast<size_t>(g->size), 1), k,
                                           load, history, rng);
    }
  }
  return plan;
}

nlohmann::json to_json(const MaskPlan& plan) {
  nlohmann::json workers = nlohmann::json::array();
  for (int64_t w = 0; w < plan.config.workers; ++w) workers.push_back(plan.subnet(w));
  return {{"level", to_string(plan.config.level)},
          {"workers", plan.config.workers},
          {"coverage", plan.config.coverage},
          {"holders_per_unit", plan.holders_per_unit},
          {"seed", plan.config.seed},
          {"subnets", workers}};
}

std::string describe(const MaskPlan& plan, const models::ModelConfig& model) {
  std::ostringstream out;
  const int64_t full_params = [&] {
    models::ModelConfig full = model;
    full.subnet.clear();
    const auto rng_lock = lock_global_generator();
    auto m = models::build_model(full);
    return models::parameter_count(*m);
  }();
  out << "sdp plan: " << to_string(plan.config.level) << " level, " << plan.config.workers
      << " workers, coverage " << plan.config.coverage << " (each unit on " << plan.holders_per_unit
      << " workers), " << plan.holders.size() << " masked groups\n";
  for (int64_t w = 0; w < plan.config.workers; ++w) {
    models::ModelConfig sub = model;
    sub.subnet = plan.subnet(w);
    models::StagedModel m(nullptr);
    {
      const auto rng_lock = lock_global_generator();
      m = models::build_model(sub);
    }
    const int64_t params = models::parameter_count(*m);
    int64_t units = 0;
    int64_t total = 0;
    for (const auto& [name, sets] : plan.holders) {
      total += static_cast<int64_t>(sets.size());
      for (const WorkerSet s : sets) units += s >> w & 1;
    }
    out << "  worker " << w << ": " << units << "/" << total << " units, " << params << "/"
        << full_params << " parameters ("
        << (100.0 * static_cast<double>(params) / static_cast<double>(full_params)) << "%)\n";
  }
  return out.str();
}

}  // namespace tessera::sdp
