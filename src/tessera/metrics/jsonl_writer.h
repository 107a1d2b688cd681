// Appends one JSON object per line to a file (metrics.jsonl), flushed after every record so a
// crashed run keeps what it logged.
#pragma once

#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace tessera::metrics {

class JsonlWriter {
 public:
  // Opens `path` for appending (append = true, used by --resume) or truncating. Throws
  // tessera::Error naming the path when it cannot be opened.
  JsonlWriter(const std::string& path, bool append);
  void write(const nlohmann::json& record);

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace tessera::metrics
