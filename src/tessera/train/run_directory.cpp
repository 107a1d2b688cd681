#include "tessera/train/run_directory.h"

#include <filesystem>
#include <fstream>

#include "tessera/core/error.h"

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

void write_json_file(const std::string& path, const nlohmann::json& value) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << value.dump(2) << "\n";
    out.flush();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(temporary, ignored);
      throw Error("cannot write " + path);
    }
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) throw Error("cannot move " + temporary + " to " + path + ": " + error.message());
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
  while (std::getline(in, line)) {
    // A record cut short by the failure that stopped the run is dropped too.
    const nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded()) continue;
    if (record.contains("step") && record["step"].get<int64_t>() > step) continue;
    kept += line + "\n";
  }
  in.close();
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << kept;
    if (!out) throw Error("cannot write " + temporary);
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) throw Error("cannot move " + temporary + " to " + path + ": " + error.message());
}

}  // namespace tessera::train
