// Time to accuracy: how long a run took to first reach a target, read off its evaluation history
// (EvalPoint::elapsed_seconds, summary.json's "history"). Classification runs aim at a test
// accuracy (reached at or above it), language models at a validation loss (at or below it).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tessera/train/trainer.h"

namespace tessera::train {

struct Target {
  enum class Kind { Accuracy, Loss };
  Kind kind = Kind::Accuracy;
  double value = 0.0;  // accuracy in [0, 1], or a loss (nats per prediction)
  bool reached_by(double accuracy, double loss) const {
    return kind == Kind::Accuracy ? accuracy >= value : loss <= value;
  }
};

// Elapsed seconds of the first evaluation that reaches `target`; -1 if none does.
double seconds_to_target(const std::vector<EvalPoint>& history, const Target& target);

// The same from a summary.json "history" array (entries with test_accuracy, test_loss and
// elapsed_seconds). Throws tessera::Error if an entry lacks one of them (a run directory written
// before elapsed_seconds was recorded).
double seconds_to_target(const nlohmann::json& history, const Target& target);

}  // namespace tessera::train
