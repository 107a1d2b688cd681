#include "tessera/metrics/jsonl_writer.h"

#include <cerrno>
#include <cstring>

#include "tessera/core/error.h"

namespace tessera::metrics {

JsonlWriter::JsonlWriter(const std::string& path, bool append)
    : path_(path), out_(path, append ? std::ios::app : std::ios::trunc) {
  if (!out_)
    throw Error("cannot open metrics file '" + path_ + "' for writing: " + std::strerror(errno));
}

void JsonlWriter::write(const nlohmann::json& record) {
  // Compact (no indent) so that one record is one line; invalid UTF-8 in a string is replaced
  // rather than aborting the run over a log line.
  out_ << record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  out_.flush();
  if (!out_) throw Error("cannot write to metrics file '" + path_ + "': " + std::strerror(errno));
}

}  // namespace tessera::metrics
