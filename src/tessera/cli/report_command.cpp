// `tessera report RUN_DIR... [--out FILE.html]`: one self-contained HTML page comparing the runs
// (report::write_report); prints the page's path.
#include <cstdio>

#include "tessera/cli/commands.h"
#include "tessera/cli/options.h"
#include "tessera/report/report.h"

namespace tessera::cli {

int report_command(const Args& args) {
  std::vector<std::string> run_dirs;
  std::string out = "report.html";
  auto app = make_app(
      "Write one self-contained HTML page comparing run directories: accuracy (or bits per byte) "
      "against samples, FLOPs, wall time and bytes sent; training loss; memory per worker; bytes "
      "per step; PNN partitions and comparison; SDP plans; a summary table.",
      "tessera report");
  app->add_option("run_dirs", run_dirs,
                  "run directories of tessera train (also --dist ddp|sdp|pipeline) or tessera pnn")
      ->required();
  app->add_option("--out", out, "the HTML file to write")->capture_default_str();
  app->footer("usage: tessera report runs/a runs/b --out compare.html");
  if (!parse(*app, args)) return 0;
  report::write_report(run_dirs, out);
  std::printf("report: %s\n", out.c_str());
  return 0;
}

}  // namespace tessera::cli
