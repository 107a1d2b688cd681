// Charts as inline SVG text, drawn in C++ so that a report needs no script, font or framework:
// line plots (one series per run), stacked bars (memory split by kind) and a boolean grid (an SDP
// plan: worker x unit). Every chart is an <svg> element with the given id and class "plot".
#pragma once

#include <string>
#include <vector>

namespace tessera::report {

// Escapes &, <, >, " and ' for text and attribute values of HTML / SVG.
std::string escape_xml(const std::string& text);

// A short number for an axis or a table: 1.2k, 35M, 4.1G (SI prefixes), 0.875, 12.
std::string format_si(double value);
// Bytes with binary prefixes: 512 B, 3.2 KiB, 91.2 MiB, 1.50 GiB.
std::string format_bytes(double bytes);

// The colour of the i-th run (a fixed palette that stays distinguishable, cycling after ten).
const std::string& series_color(size_t index);

struct PlotPoint {
  double x = 0.0;
  double y = 0.0;
};

struct PlotSeries {
  std::string label;  // shown in the legend
  std::string color;
  std::vector<PlotPoint> points;  // drawn in the given order
  bool dashed = false;
};

struct LinePlot {
  std::string id;  // the <svg> element's id
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<PlotSeries> series;
  bool x_bytes = false;  // format the x axis as bytes (else format_si)
};

// A line plot with markers, axes with round ticks and a legend. Non-finite points are skipped; a
// plot without any point draws its frame and says "no data".
std::string line_plot_svg(const LinePlot& plot);

struct StackedBar {
  std::string label;           // under the bar
  std::vector<double> values;  // one per segment kind, stacked from the bottom
};

struct StackedBarChart {
  std::string id;
  std::string title;
  std::string y_label;
  std::vector<std::string> segment_labels;  // legend, one per value of a bar
  std::vector<std::string> segment_colors;
  std::vector<StackedBar> bars;
  bool bytes = true;  // format the axis as bytes (else format_si)
};

std::string stacked_bar_svg(const StackedBarChart& chart);

// Rows (workers) x columns (units, or bins of neighbouring units of one group): the fraction of the
// column's units the row holds, drawn from light grey (none) to blue (all).
struct UnitGrid {
  std::string id;
  std::string title;
  std::vector<std::string> row_labels;     // e.g. "worker 0"
  std::vector<std::string> column_labels;  // e.g. "stage1.neurons:17" (tooltips)
  std::vector<std::string> column_groups;  // per column, its unit group (named below the grid)
  std::vector<std::vector<double>> held;   // [row][column], 0..1
  std::vector<std::vector<bool>> changed;  // same shape or empty: cells outlined in red
};

std::string unit_grid_svg(const UnitGrid& grid);

}  // namespace tessera::report
