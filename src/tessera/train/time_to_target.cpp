#include "tessera/train/time_to_target.h"

#include "tessera/core/error.h"

namespace tessera::train {

double seconds_to_target(const std::vector<EvalPoint>& history, const Target& target) {
  for (const auto& point : history)
    if (target.reached_by(point.test.accuracy, point.test.loss)) return point.elapsed_seconds;
  return -1.0;
}

double seconds_to_target(const nlohmann::json& history, const Target& target) {
  if (!history.is_array()) throw Error("seconds_to_target: the history is not an array");
  for (const auto& point : history) {
    for (const char* key : {"test_accuracy", "test_loss", "elapsed_seconds"})
      if (!point.contains(key))
        throw Error(std::string("seconds_to_target: a history entry has no '") + key +
                    "' (written by an older tessera?)");
    if (target.reached_by(point.at("test_accuracy").get<double>(),
                          point.at("test_loss").get<double>()))
      return point.at("elapsed_seconds").get<double>();
  }
  return -1.0;
}

}  // namespace tessera::train
