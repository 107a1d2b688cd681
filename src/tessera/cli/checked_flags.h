// Range checks for numeric flags, as CLI11 validators: attached where a flag is declared, they run
// on every value CLI11 parses, so a value from --config FILE.json is checked like one from the
// command line. A value outside its range is a usage error (exit code 2) whose message names the
// flag, the value and the accepted range, e.g. "--lr: must be a finite number > 0, got 'inf'".
#pragma once

#include <cstdint>
#include <limits>

#include <CLI/CLI.hpp>

namespace tessera::cli {

// The largest count any integer flag accepts unless it says otherwise: far beyond any real run,
// small enough that products of counts (epochs x steps, batch x workers) stay far from overflow.
constexpr int64_t kMaxCount = 1'000'000'000;

// A finite real number in [low, high], with either end open (excluded) if asked.
struct RealRange {
  double low = -std::numeric_limits<double>::infinity();
  double high = std::numeric_limits<double>::infinity();
  bool low_open = false;
  bool high_open = false;
};

CLI::Validator real_in(const RealRange& range);
CLI::Validator positive_real();                                    // finite, > 0
CLI::Validator non_negative_real();                                // finite, >= 0
CLI::Validator probability_below_one();                            // [0, 1)
CLI::Validator fraction_open();                                    // (0, 1)
CLI::Validator integer_in(int64_t low, int64_t high = kMaxCount);  // decimal digits only
CLI::Validator seed_value();                                       // an unsigned 64-bit integer
// A comma-separated list whose every item passes `item` (e.g. --hidden 64,64).
CLI::Validator list_of(const CLI::Validator& item);

}  // namespace tessera::cli
