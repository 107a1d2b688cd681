#include "tessera/train/run_directory.h"

#include <filesystem>
#include <fstream>

#include "tessera/core/error.h"
#include "tessera/core/file_io.h"

namespace tessera::train {

RunDirectory::RunDirectory(std::string path, bool resume) : path_(std::move(path)) {
  std::error_code error;
  std::filesystem::create_directories(path_, error);
  if (error) throw Error("cannot create run directory " + path_ + ": " + error.message());
  metrics_ = std::make_unique<metrics::JsonlWriter>(file("metrics.jsonl"), resume);
}

void RunDirectory::write_json(const std::string& name, const nlohmann::json& value) const {
  write_json_file(file(name), value);
}

void RunDirectory::log(const nlohmann::json& record) {
  metrics_->write(record);
}

void RunDirectory::drop_records_after(int64_t step) {
  metrics_.reset();
  drop_metrics_after_step(file("metrics.jsonl"), step);
  metrics_ = std::make_unique<metrics::JsonlWriter>(file("metrics.jsonl"), /*append=*/true);
}

void write_json_file(const std::string& path, const nlohmann::json& value) {
  write_file_atomically(path, value.dump(2) + "\n");
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open " + path);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + " is not valid JSON: " + e.what());
  }
}

void drop_metrics_after_step(const std::string& path, int64_t step) {
  std::ifstream in(path);
  if (!in) return;
  std::string kept;
  std::string line;
  bool dropped = false;
  while (std::getline(in, line)) {
    // A record cut short by the failure that stopped the run is dropped too.
    const nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    const bool later = record.is_object() && record.contains("step") &&
                       record["step"].is_number_integer() && record["step"].get<int64_t>() > step;
    if (record.is_discarded() || later)
      dropped = true;
    else
      kept += line + "\n";
  }
  in.close();
  if (dropped) write_file_atomically(path, kept);
}

}  // namespace tessera::train
