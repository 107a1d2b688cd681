#include "tessera/metrics/jsonl_writer.h"

#include "tessera/core/error.h"

namespace tessera::metrics {

JsonlWriter::JsonlWriter(const std::string& path, bool append) : file_(path, append) {}

void JsonlWriter::write(const nlohmann::json& record) {
  // Compact (no indent) so that one record is one line; invalid UTF-8 in a string is replaced
  // rather than aborting the run over a log line.
  file_.write(record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + '\n');
}

}  // namespace tessera::metrics
