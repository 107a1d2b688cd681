#include "tessera/report/html_page.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "tessera/report/svg_plot.h"

namespace tessera::report {
namespace {

// At most this many plans of one SDP run are drawn (a run may redraw its plan every few steps).
constexpr size_t kMaxPlansDrawn = 8;
// A plan with more units is drawn with neighbouring units of a group sharing a cell.
constexpr size_t kMaxGridColumns = 120;

const char* const kStyle = R"(
body { font-family: "DejaVu Sans", Verdana, Arial, sans-serif; margin: 16px 24px; color: #222;
       background: #fff; font-size: 14px; }
h1 { font-size: 22px; margin: 0 0 6px; }
h2 { font-size: 17px; margin: 22px 0 8px; border-bottom: 1px solid #ccc; padding-bottom: 3px; }
h3 { font-size: 15px; margin: 14px 0 6px; }
.layout { display: flex; flex-wrap: wrap; align-items: flex-start; gap: 24px; }
.main { flex: 0 1 1030px; min-width: 0; }
.side { flex: 1 1 420px; min-width: 420px; position: sticky; top: 8px; overflow-x: auto; }
.side td:first-child { white-space: nowrap; }
.side th { font-size: 12px; }
.side td, .side th { padding: 2px 5px; }
.plots { display: flex; flex-wrap: wrap; gap: 14px; }
svg.plot { font-size: 12px; background: #fff; flex: 0 0 auto; }
svg.plot .frame { fill: none; stroke: #ddd; }
svg.plot .title { font-size: 14px; font-weight: bold; }
svg.plot .axis-label { font-size: 12px; fill: #444; }
svg.plot .grid { stroke: #e6e6e6; }
svg.plot .no-data { fill: #999; font-size: 14px; }
svg.plot rect.changed { stroke: #e15759; stroke-width: 1.5; }
svg.plot .group-sep { stroke: #888; }
svg.plot .group-label { font-size: 10px; fill: #555; }
svg.plot .bar-total { font-size: 11px; fill: #333; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f2f2f2; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 5px;
          vertical-align: middle; border-radius: 2px; }
.legend-list span.entry { margin-right: 16px; white-space: nowrap; }
.notes { color: #555; font-size: 13px; }
code { font-size: 12px; }
)";

using PointOf = std::function<PlotPoint(const Evaluation&)>;

std::string tag(const std::string& name, const std::string& body, const std::string& attrs = "") {
  return "<" + name + (attrs.empty() ? "" : " " + attrs) + ">" + body + "</" + name + ">";
}

bool all_language_models(const ReportData& data) {
  if (data.runs.empty()) return false;
  for (const auto& run : data.runs)
    if (!run.language_model) return false;
  return true;
}

bool has_finite_point(const PlotSeries& s) {
  for (const auto& p : s.points)
    if (std::isfinite(p.x) && std::isfinite(p.y)) return true;
  return false;
}

// One series per run that has points on this plot's axes.
LinePlot evaluation_plot(const ReportData& data, const std::string& id, const std::string& title,
                         const std::string& x_label, const std::string& y_label,
                         const PointOf& point_of) {
  LinePlot plot{id, title, x_label, y_label, {}};
  for (size_t i = 0; i < data.runs.size(); ++i) {
    const bool pnn = data.runs[i].method.rfind("pnn", 0) == 0;
    PlotSeries series{data.runs[i].name, series_color(i), {}, pnn};
    for (const auto& e : data.runs[i].evaluations) series.points.push_back(point_of(e));
    if (has_finite_point(series)) plot.series.push_back(std::move(series));
  }
  return plot;
}

// Measured elapsed time where every run recorded it; otherwise the axis says what it shows.
std::string wall_axis_label(const ReportData& data) {
  size_t measured = 0, derived = 0;
  for (const auto& run : data.runs) {
    if (run.evaluations.empty() || !std::isfinite(run.evaluations.front().wall_seconds)) continue;
    ++(run.wall_measured ? measured : derived);
  }
  if (derived == 0) return "wall seconds since the run started";
  if (measured == 0) return "training seconds (summed epoch_seconds; no elapsed_seconds recorded)";
  return "seconds (elapsed_seconds where recorded, else summed epoch_seconds)";
}

std::string evaluation_section(const ReportData& data) {
  const bool bpb = all_language_models(data);
  const std::string y = bpb ? "validation bits per byte" : "test accuracy";
  const auto y_of = [bpb](const Evaluation& e) {
    return bpb ? e.bits_per_byte : 100.0 * e.test_accuracy;
  };
  const std::string y_label = bpb ? "bits per byte" : "test accuracy (%)";
  std::string plots;
  plots +=
      line_plot_svg(evaluation_plot(data, "plot-accuracy-samples", y + " against training samples",
                                    "training samples", y_label, [&](const Evaluation& e) {
                                      return PlotPoint{e.train_samples, y_of(e)};
                                    }));
  plots +=
      line_plot_svg(evaluation_plot(data, "plot-accuracy-flops", y + " against training FLOPs",
                                    "training FLOPs (analytic)", y_label, [&](const Evaluation& e) {
                                      return PlotPoint{e.train_flops, y_of(e)};
                                    }));
  plots += line_plot_svg(evaluation_plot(data, "plot-accuracy-wall", y + " against wall time",
                                         wall_axis_label(data), y_label, [&](const Evaluation& e) {
                                           return PlotPoint{e.wall_seconds, y_of(e)};
                                         }));
  LinePlot bytes = evaluation_plot(data, "plot-accuracy-bytes", y + " against bytes sent",
                                   "bytes sent, all workers", y_label, [&](const Evaluation& e) {
                                     return PlotPoint{e.bytes_sent, y_of(e)};
                                   });
  bytes.x_bytes = true;
  plots += line_plot_svg(bytes);
  return tag("h2", bpb ? "Validation loss" : "Test accuracy") +
         tag("div", plots, "class=\"plots\"");
}

std::string train_loss_section(const ReportData& data) {
  LinePlot plot{"plot-train-loss", "training loss", "training samples", "loss", {}};
  for (size_t i = 0; i < data.runs.size(); ++i) {
    PlotSeries series{data.runs[i].name, series_color(i), {}, false};
    for (const auto& [x, y] : data.runs[i].train_loss) series.points.push_back({x, y});
    if (has_finite_point(series)) plot.series.push_back(std::move(series));
  }
  return tag("h2", "Training loss") + tag("div", line_plot_svg(plot), "class=\"plots\"");
}

std::string memory_section(const ReportData& data) {
  std::string plots;
  for (size_t i = 0; i < data.runs.size(); ++i) {
    const Run& run = data.runs[i];
    StackedBarChart chart;
    chart.id = "plot-memory-" + std::to_string(i);
    chart.title = "peak tensor memory per worker: " + run.name;
    chart.y_label = "bytes";
    chart.segment_labels = {"parameters", "gradients", "optimizer state",
                            "activations and the rest", "peak (parts not recorded)"};
    chart.segment_colors = {"#4e79a7", "#f28e2b", "#59a14f", "#bab0ac", "#9c755f"};
    bool unsplit = false;
    for (const auto& m : run.memory) {
      unsplit = unsplit || !m.split_known;
      if (m.split_known)
        chart.bars.push_back({m.label, {m.params, m.grads, m.optimizer, m.rest(), 0.0}});
      else
        chart.bars.push_back({m.label, {0.0, 0.0, 0.0, 0.0, m.peak}});
    }
    if (!unsplit) {  // no bar needs the fifth kind: keep it out of the legend
      chart.segment_labels.pop_back();
      chart.segment_colors.pop_back();
    }
    plots += stacked_bar_svg(chart);
  }
  return tag("h2", "Memory") + tag("div", plots, "class=\"plots\"");
}

std::string communication_section(const ReportData& data) {
  StackedBarChart chart;
  chart.id = "plot-bytes-per-step";
  chart.title = "bytes sent per optimizer step (all workers)";
  chart.y_label = "bytes per step";
  for (size_t i = 0; i < data.runs.size(); ++i) {
    chart.segment_labels.push_back(std::to_string(i + 1) + ": " + data.runs[i].name);
    chart.segment_colors.push_back(series_color(i));
  }
  for (size_t i = 0; i < data.runs.size(); ++i) {
    std::vector<double> values(data.runs.size(), 0.0);
    const double bytes = data.runs[i].bytes_per_step;
    values[i] = std::isfinite(bytes) ? bytes : 0.0;
    chart.bars.push_back({std::to_string(i + 1), values});
  }
  return tag("h2", "Communication") + tag("div", stacked_bar_svg(chart), "class=\"plots\"");
}

std::string table_html(const std::string& id, const std::vector<std::string>& columns,
                       const std::vector<std::vector<std::string>>& rows) {
  std::string head;
  for (const auto& c : columns) head += tag("th", escape_xml(c));
  std::string body;
  for (const auto& row : rows) {
    std::string cells;
    for (const auto& cell : row) cells += tag("td", escape_xml(cell));
    body += tag("tr", cells);
  }
  return tag("table", tag("thead", tag("tr", head)) + tag("tbody", body),
             "id=\"" + escape_xml(id) + "\"");
}

std::string partitions_table(size_t index, const Run& run) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : run.pnn_partitions) {
    char loss[32];
    std::snprintf(loss, sizeof loss, "%.4g", p.train_loss);
    rows.push_back({std::to_string(p.index),
                    std::to_string(p.begin_stage) + " .. " + std::to_string(p.end_stage - 1),
                    format_si(static_cast<double>(p.parameters)), format_si(p.forward_flops),
                    format_bytes(p.peak_tensor_bytes), p.objective, loss});
  }
  return tag("h3", escape_xml(run.name) + ": partitions") +
         table_html("pnn-partitions-" + std::to_string(index),
                    {"partition", "stages", "parameters", "forward FLOPs / sample",
                     "peak tensor memory", "objective", "final train loss"},
                    rows);
}

std::string pnn_section(const ReportData& data) {
  std::string html;
  for (size_t k = 0; k < data.comparisons.size(); ++k) {
    const PnnComparison& c = data.comparisons[k];
    char target[96];
    std::snprintf(target, sizeof target, " (target: %.2f%% test accuracy)",
                  100.0 * c.target_accuracy);
    html += tag("h3", escape_xml(c.name) + ": comparison with conventional training" + target) +
            table_html("pnn-comparison-" + std::to_string(k), c.columns, c.rows);
  }
  for (size_t i = 0; i < data.runs.size(); ++i)
    if (!data.runs[i].pnn_partitions.empty()) html += partitions_table(i, data.runs[i]);
  return html.empty() ? "" : tag("h2", "PNN") + html;
}

// A plan's units in columns of `bin` neighbouring units of one group: per worker the fraction held,
// and whether any unit of the column changed holder since `before` (null: the first plan).
struct BinnedPlan {
  std::vector<std::string> labels, groups;
  std::vector<std::vector<double>> held;
  std::vector<std::vector<bool>> changed;
  int64_t newly_held = 0;
};

BinnedPlan bin_plan(const SdpPlan& plan, const SdpPlan* before, size_t bin) {
  BinnedPlan out;
  const size_t workers = plan.held.size();
  out.held.resize(workers);
  out.changed.resize(workers);
  const bool compare = before != nullptr && before->unit_labels == plan.unit_labels &&
                       before->held.size() == workers;
  for (size_t begin = 0; begin < plan.unit_labels.size();) {
    size_t end = begin;
    while (end < plan.unit_labels.size() && end - begin < bin &&
           plan.unit_groups[end] == plan.unit_groups[begin])
      ++end;
    out.labels.push_back(end - begin == 1
                             ? plan.unit_labels[begin]
                             : plan.unit_labels[begin] + " .. " + plan.unit_labels[end - 1]);
    out.groups.push_back(plan.unit_groups[begin]);
    for (size_t w = 0; w < workers; ++w) {
      size_t held = 0;
      bool changed = false;
      for (size_t u = begin; u < end; ++u) {
        held += plan.held[w][u];
        const bool differs = compare && before->held[w][u] != plan.held[w][u];
        changed = changed || differs;
        out.newly_held += differs && plan.held[w][u];
      }
      out.held[w].push_back(static_cast<double>(held) / static_cast<double>(end - begin));
      out.changed[w].push_back(changed);
    }
    begin = end;
  }
  return out;
}

// The grid of plan k of an SDP run, with the columns that differ from plan k - 1 outlined.
std::string plan_grid(size_t run_index, size_t k, const Run& run) {
  const SdpPlan& plan = run.sdp_plans[k];
  const size_t bin = (plan.unit_labels.size() + kMaxGridColumns - 1) / kMaxGridColumns;
  const BinnedPlan binned = bin_plan(plan, k > 0 ? &run.sdp_plans[k - 1] : nullptr, bin);
  UnitGrid grid;
  grid.id = "sdp-plan-" + std::to_string(run_index) + "-" + std::to_string(k);
  grid.column_labels = binned.labels;
  grid.column_groups = binned.groups;
  grid.held = binned.held;
  if (k > 0) grid.changed = binned.changed;
  for (size_t w = 0; w < plan.held.size(); ++w)
    grid.row_labels.push_back("worker " + std::to_string(w));
  grid.title = run.name + ": " + plan.label;
  if (k > 0) grid.title += " (" + std::to_string(binned.newly_held) + " units newly held)";
  if (bin > 1) grid.title += ", " + std::to_string(bin) + " units a cell";
  return unit_grid_svg(grid);
}

std::string sdp_section(const ReportData& data) {
  std::string html;
  for (size_t i = 0; i < data.runs.size(); ++i) {
    const Run& run = data.runs[i];
    if (run.sdp_plans.empty()) continue;
    std::string grids;
    const size_t drawn = std::min(run.sdp_plans.size(), kMaxPlansDrawn);
    for (size_t k = 0; k < drawn; ++k) grids += plan_grid(i, k, run);
    html += tag("h3", escape_xml(run.name) +
                          ": plan (worker x unit; blue = held, shade = share of a cell's units "
                          "held; red outline = changed since the plan before)") +
            tag("div", grids, "class=\"plots\"");
    if (drawn < run.sdp_plans.size())
      html += tag("p",
                  "The first " + std::to_string(drawn) + " of " +
                      std::to_string(run.sdp_plans.size()) + " plans are drawn.",
                  "class=\"notes\"");
  }
  return html.empty() ? "" : tag("h2", "SDP plans") + html;
}

// Rows = the union of the runs' summary rows (in first-seen order), columns = runs.
std::string summary_table(const ReportData& data) {
  std::vector<std::string> keys;
  for (const auto& run : data.runs)
    for (const auto& row : run.summary)
      if (std::find(keys.begin(), keys.end(), row.first) == keys.end()) keys.push_back(row.first);
  std::string head = tag("th", "");
  for (size_t i = 0; i < data.runs.size(); ++i)
    head += tag("th", "<span class=\"swatch\" style=\"background:" + series_color(i) +
                          "\"></span>" + escape_xml(data.runs[i].name));
  std::string body;
  for (const auto& key : keys) {
    std::string cells = tag("td", escape_xml(key));
    for (const auto& run : data.runs) {
      std::string value = "";
      for (const auto& row : run.summary)
        if (row.first == key) value = row.second;
      cells += tag("td", escape_xml(value));
    }
    body += tag("tr", cells);
  }
  return tag("h2", "Summary") +
         tag("table", tag("thead", tag("tr", head)) + tag("tbody", body), "id=\"summary-table\"");
}

std::string header(const ReportData& data, const std::vector<std::string>& sources) {
  std::string legend;
  for (size_t i = 0; i < data.runs.size(); ++i)
    legend += "<span class=\"entry\"><span class=\"swatch\" style=\"background:" + series_color(i) +
              "\"></span>" + escape_xml(data.runs[i].name) + " <code>" +
              escape_xml(data.runs[i].path) + "</code></span> ";
  std::string dirs;
  for (const auto& s : sources) dirs += (dirs.empty() ? "" : ", ") + escape_xml(s);
  return tag("h1", "tessera report") + tag("p", "Run directories: " + dirs) +
         tag("p", legend, "class=\"legend-list\" id=\"legend\"");
}

std::string notes_section(const ReportData& data) {
  std::string items;
  for (const auto& run : data.runs)
    for (const auto& note : run.notes)
      items += tag("li", tag("b", escape_xml(run.name)) + ": " + escape_xml(note));
  return items.empty() ? "" : tag("h2", "Notes") + tag("ul", items, "class=\"notes\" id=\"notes\"");
}

}  // namespace

std::string render_html(const ReportData& data, const std::vector<std::string>& sources) {
  const std::string main = evaluation_section(data) + train_loss_section(data) +
                           memory_section(data) + communication_section(data) + pnn_section(data) +
                           sdp_section(data) + notes_section(data);
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"generator\" content=\"tessera " TESSERA_VERSION
         "\">"
         "<title>tessera report</title><style>" +
         std::string(kStyle) + "</style></head><body>" + header(data, sources) +
         tag("div",
             tag("div", main, "class=\"main\"") + tag("div", summary_table(data), "class=\"side\""),
             "class=\"layout\"") +
         "</body></html>\n";
}

}  // namespace tessera::report
