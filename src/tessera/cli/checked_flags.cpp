#include "tessera/cli/checked_flags.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

namespace tessera::cli {
namespace {

std::string number_text(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

// "in (0, 1]", "> 0", ">= 0" or "" (any finite number).
std::string describe(const RealRange& r) {
  const bool bounded_low = std::isfinite(r.low);
  const bool bounded_high = std::isfinite(r.high);
  if (bounded_low && bounded_high)
    return std::string(" in ") + (r.low_open ? "(" : "[") + number_text(r.low) + ", " +
           number_text(r.high) + (r.high_open ? ")" : "]");
  if (bounded_low) return std::string(r.low_open ? " > " : " >= ") + number_text(r.low);
  if (bounded_high) return std::string(r.high_open ? " < " : " <= ") + number_text(r.high);
  return "";
}

// The whole of `text` as a double; false for junk, an empty text or a trailing remainder.
bool parse_real(const std::string& text, double* value) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text.front()))) return false;
  char* end = nullptr;
  errno = 0;
  *value = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size();
}

// Optional sign, then decimal digits only: no "1e3", "0x10", "1.0" or spaces.
bool decimal_integer(const std::string& text) {
  const size_t start = (!text.empty() && (text[0] == '-' || text[0] == '+')) ? 1 : 0;
  if (text.size() == start) return false;
  for (size_t i = start; i < text.size(); ++i)
    if (text[i] < '0' || text[i] > '9') return false;
  return true;
}

std::string got(const std::string& text) {
  return ", got '" + text + "'";
}

// The range in interval notation, for --help: "(0, inf)", "[0, 1)".
std::string interval(const RealRange& r) {
  const auto end = [](double v) -> std::string {
    return std::isfinite(v) ? number_text(v) : v > 0 ? "inf" : "-inf";
  };
  return std::string(r.low_open || !std::isfinite(r.low) ? "(" : "[") + end(r.low) + ", " +
         end(r.high) + (r.high_open || !std::isfinite(r.high) ? ")" : "]");
}

}  // namespace

CLI::Validator real_in(const RealRange& range) {
  const std::string wanted = "a finite number" + describe(range);
  return CLI::Validator(
      [range, wanted](std::string& text) -> std::string {
        double value = 0.0;
        if (!parse_real(text, &value) || !std::isfinite(value))
          return "must be " + wanted + got(text);
        const bool low_ok = range.low_open ? value > range.low : value >= range.low;
        const bool high_ok = range.high_open ? value < range.high : value <= range.high;
        if (!low_ok || !high_ok) return "must be " + wanted + got(text);
        return "";
      },
      interval(range), "real_in");
}

CLI::Validator positive_real() {
  return real_in({0.0, std::numeric_limits<double>::infinity(), true, false});
}
CLI::Validator non_negative_real() {
  return real_in({0.0, std::numeric_limits<double>::infinity(), false, false});
}
CLI::Validator probability_below_one() {
  return real_in({0.0, 1.0, false, true});
}
CLI::Validator fraction_open() {
  return real_in({0.0, 1.0, true, true});
}

CLI::Validator integer_in(int64_t low, int64_t high) {
  const std::string wanted =
      "an integer in [" + std::to_string(low) + ", " + std::to_string(high) + "]";
  return CLI::Validator(
      [low, high, wanted](std::string& text) -> std::string {
        if (!decimal_integer(text)) return "must be " + wanted + got(text);
        errno = 0;
        const long long value = std::strtoll(text.c_str(), nullptr, 10);
        if (errno == ERANGE || value < low || value > high) return "must be " + wanted + got(text);
        return "";
      },
      "[" + std::to_string(low) + ", " + std::to_string(high) + "]", "integer_in");
}

CLI::Validator seed_value() {
  const std::string wanted = "an integer in [0, 18446744073709551615]";
  return CLI::Validator(
      [wanted](std::string& text) -> std::string {
        if (!decimal_integer(text) || text[0] == '-') return "must be " + wanted + got(text);
        errno = 0;
        std::strtoull(text.c_str(), nullptr, 10);
        if (errno == ERANGE) return "must be " + wanted + got(text);
        return "";
      },
      "[0, 2^64)", "seed_value");
}

CLI::Validator list_of(const CLI::Validator& item) {
  const std::string wanted = "comma-separated, each in " + item.get_description();
  return CLI::Validator(
      [item, wanted](std::string& text) -> std::string {
        std::stringstream stream(text);
        std::string part;
        bool any = false;
        while (std::getline(stream, part, ',')) {
          any = true;
          const std::string error = item(part);
          if (!error.empty()) return "item '" + part + "' of '" + text + "' " + error;
        }
        if (!any || text.back() == ',') return "must be a list, " + wanted + got(text);
        return "";
      },
      "each in " + item.get_description(), "list_of");
}

}  // namespace tessera::cli
