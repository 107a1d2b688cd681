// Errors that reach the user. Every failure tessera can diagnose is thrown as one of these and
// turned into a one-line message and a non-zero exit code by the command-line front end.
#pragma once

#include <stdexcept>
#include <string>

namespace tessera {

// A problem with data, files, configuration or a worker: exit code 1.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// A command-line or configuration value that cannot be used: exit code 2.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(message) {}
};

// Throws UsageError(message) unless `condition` holds. For validating user-supplied settings.
inline void require(bool condition, const std::string& message) {
  if (!condition) throw UsageError(message);
}

}  // namespace tessera
