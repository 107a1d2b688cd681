// A run's directory: config.json (the resolved configuration), metrics.jsonl (one record per
// logged step and per epoch), summary.json (final results) and checkpoint.pt.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "tessera/metrics/jsonl_writer.h"

namespace tessera::train {

class RunDirectory {
 public:
  // Creates the directory (and parents). `resume`: append to metrics.jsonl instead of starting it
  // anew. Throws tessera::Error naming the path if it cannot be created or written.
  RunDirectory(std::string path, bool resume);

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  std::string checkpoint_path() const { return file("checkpoint.pt"); }

  // Writes `name` atomically (temporary file + rename), pretty-printed.
  void write_json(const std::string& name, const nlohmann::json& value) const;
  void log(const nlohmann::json& record);
  // For a resumed run: drops the metrics.jsonl records of steps after `step` (those a stopped or
  // failed run logged after its last checkpoint, which the resumed run repeats), atomically.
  void drop_records_after(int64_t step);

 private:
  std::string path_;
  std::unique_ptr<metrics::JsonlWriter> metrics_;
};

// Drops the records of metrics.jsonl at `path` logged after optimizer step `step` (a run resumed
// from that step logs them again). Nothing happens if the file does not exist.
void drop_metrics_after_step(const std::string& path, int64_t step);

// Writes `value` to `path` atomically. Throws tessera::Error naming the path on failure.
void write_json_file(const std::string& path, const nlohmann::json& value);
// Reads a JSON file; throws tessera::Error naming the path if missing or malformed.
nlohmann::json read_json_file(const std::string& path);

}  // namespace tessera::train
