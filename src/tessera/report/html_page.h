// The report as one self-contained HTML page: inline SVG charts (svg_plot.h) and tables, styles
// inline, no script, no external resource of any kind, so it opens offline in any browser.
#pragma once

#include <string>
#include <vector>

#include "tessera/report/run.h"

namespace tessera::report {

// The page comparing `data`'s runs. `sources`: the directories given, listed in the header.
// Chart ids (for tests and links): plot-accuracy-{samples,flops,wall,bytes}, plot-train-loss,
// plot-memory-<run>, plot-bytes-per-step, sdp-plan-<run>-<k>; tables: summary-table,
// pnn-comparison-<k>, pnn-partitions-<run>.
std::string render_html(const ReportData& data, const std::vector<std::string>& sources);

}  // namespace tessera::report
