// Reads run directories (docs/run-directory.md) into the report's model (run.h). Every problem
// (a missing directory, a directory that is not a run, unreadable or corrupt JSON or JSON lines)
// is a tessera::Error naming the path.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "tessera/report/run.h"

namespace tessera::report {

// Appends what `path` holds to `data`: a `tessera train` run (also --dist ddp|sdp|pipeline), or a
// `tessera pnn` run (each schedule a Run; with --compare also the conventional run and the
// comparison table). `name` labels its curves.
void read_run_directory(const std::string& path, const std::string& name, ReportData& data);

// A training run's directory (summary.json, metrics.jsonl, config.json if present).
Run read_training_run(const std::string& path, const std::string& name);
// A `tessera pnn` directory whose summary.json has been read.
void read_pnn_run(const std::string& path, const std::string& name, const nlohmann::json& summary,
                  ReportData& data);
// sdp_plan.json and its changes (sdp_plan_epoch<E>.json, sdp_plan_step<S>.json) in training order.
std::vector<SdpPlan> read_sdp_plans(const std::string& path);

// The records of a metrics.jsonl file, in order (an absent file: none).
std::vector<nlohmann::json> read_json_lines(const std::string& path);
// A number field, or kMissing when absent or not a number.
double number_or_missing(const nlohmann::json& object, const char* key);
// `value` printed with the printf `format` (one double), or "-" when it is not finite.
std::string fixed(double value, const char* format);

}  // namespace tessera::report
