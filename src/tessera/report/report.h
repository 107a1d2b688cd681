// `tessera report`: reads run directories and writes one self-contained HTML page comparing them
// (read_run.h -> html_page.h). Also called by `tessera pnn --compare` on its own run directory.
#pragma once

#include <string>
#include <vector>

namespace tessera::report {

// The legend names of `paths`: each directory's last component, made unique by prefixing parent
// components where two would collide ("a/run" and "b/run").
std::vector<std::string> run_names(const std::vector<std::string>& paths);

// Checks that `out` can be written (its directory exists and is writable; it is not a directory).
// Throws tessera::UsageError naming the path.
void check_output_path(const std::string& out);

// Reads every directory of `paths` and writes the report to `out` (atomically: a temporary file,
// then rename). Throws tessera::Error naming the path at fault.
void write_report(const std::vector<std::string>& paths, const std::string& out);

}  // namespace tessera::report
