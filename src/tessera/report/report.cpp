#include "tessera/report/report.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "tessera/core/error.h"
#include "tessera/report/html_page.h"
#include "tessera/report/read_run.h"

namespace tessera::report {
namespace {

namespace fs = std::filesystem;

// The last `depth` components of a path ("runs/a/" with depth 1: "a").
std::string tail_of(const std::string& path, size_t depth) {
  fs::path p = fs::path(path).lexically_normal();
  if (p.has_filename() == false) p = p.parent_path();
  std::vector<std::string> parts;
  for (const auto& part : p)
    if (!part.empty() && part != "/") parts.push_back(part.string());
  std::string name;
  for (size_t i = parts.size() > depth ? parts.size() - depth : 0; i < parts.size(); ++i)
    name += (name.empty() ? "" : "/") + parts[i];
  return name.empty() ? path : name;
}

}  // namespace

std::vector<std::string> run_names(const std::vector<std::string>& paths) {
  std::vector<size_t> depth(paths.size(), 1);
  std::vector<std::string> names(paths.size());
  // Lengthen colliding names until they differ (or are whole paths).
  for (int round = 0; round < 16; ++round) {
    for (size_t i = 0; i < paths.size(); ++i) names[i] = tail_of(paths[i], depth[i]);
    bool changed = false;
    for (size_t i = 0; i < paths.size(); ++i)
      for (size_t j = i + 1; j < paths.size(); ++j)
        if (names[i] == names[j] && names[i] != tail_of(paths[i], depth[i] + 1)) {
          ++depth[i];
          ++depth[j];
          changed = true;
        }
    if (!changed) break;
  }
  return names;
}

void check_output_path(const std::string& out) {
  require(!out.empty(), "--out: empty path");
  require(!fs::is_directory(out), "--out " + out + " is a directory; give a file name");
  const fs::path parent = fs::path(out).parent_path();
  const std::string dir = parent.empty() ? "." : parent.string();
  require(fs::is_directory(dir), "--out " + out + ": directory " + dir + " does not exist");
  require(::access(dir.c_str(), W_OK) == 0,
          "--out " + out + ": directory " + dir + " is not writable");
  require(!fs::exists(out) || ::access(out.c_str(), W_OK) == 0,
          "--out " + out + " exists and is not writable");
}

void write_report(const std::vector<std::string>& paths, const std::string& out) {
  require(!paths.empty(), "no run directory given");
  check_output_path(out);
  const std::vector<std::string> names = run_names(paths);
  ReportData data;
  for (size_t i = 0; i < paths.size(); ++i) read_run_directory(paths[i], names[i], data);
  const std::string html = render_html(data, paths);
  const std::string temporary = out + ".tmp";
  {
    std::ofstream file(temporary, std::ios::binary | std::ios::trunc);
    file << html;
    file.flush();
    if (!file) {
      std::error_code ignored;
      fs::remove(temporary, ignored);
      throw Error("cannot write " + temporary + ": " + std::strerror(errno));
    }
  }
  std::error_code error;
  fs::rename(temporary, out, error);
  if (error) throw Error("cannot rename " + temporary + " to " + out + ": " + error.message());
}

}  // namespace tessera::report
