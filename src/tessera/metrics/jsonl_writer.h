// Appends one JSON object per line to a file (metrics.jsonl), one write() per record, so a crashed
// run keeps what it logged. A record the disk cannot take (full, read-only, I/O error) is cut off
// again and the error names the file: the file always ends with a complete record.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "tessera/core/file_io.h"

namespace tessera::metrics {

class JsonlWriter {
 public:
  // Opens `path` for appending (append = true, used by --resume; a torn last line is dropped) or
  // truncating. Throws tessera::Error naming the path when it cannot be opened.
  JsonlWriter(const std::string& path, bool append);
  void write(const nlohmann::json& record);

 private:
  AppendFile file_;
};

}  // namespace tessera::metrics
