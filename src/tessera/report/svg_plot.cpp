#include "tessera/report/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace tessera::report {
namespace {

constexpr double kWidth = 500;
constexpr double kPlotHeight = 250;  // the drawing area of a line plot or a bar chart
constexpr double kLeft = 72, kRight = 18, kTop = 36, kAxisBelow = 44;
constexpr double kLegendRow = 18;
constexpr int kTargetTicks = 5;

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", v);
  return text;
}

struct Range {
  double lo = 0.0;
  double hi = 1.0;
};

// Round tick values (1, 2 or 5 times a power of ten) covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi) {
  if (!(hi > lo)) {
    const double pad = lo == 0.0 ? 1.0 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / kTargetTicks;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double normalized = raw / magnitude;
  const double step = (normalized < 1.5   ? 1.0
                       : normalized < 3.0 ? 2.0
                       : normalized < 7.0 ? 5.0
                                          : 10.0) *
                      magnitude;
  std::vector<double> ticks;
  const double first = std::floor(lo / step + 1e-9) * step;
  for (double v = first; v <= hi + step * (1.0 - 1e-9); v += step) {
    ticks.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
    if (ticks.size() > 20) break;  // cannot happen with a finite range; a guard all the same
  }
  return ticks;
}

// x: from 0 (every x of a report is a cumulative amount); y: the data, padded to round ticks.
// Byte axes tick at round numbers of the unit their largest value is shown in (KiB, MiB, ...).
std::vector<double> ticks_for(const std::vector<double>& values, bool from_zero,
                              bool bytes = false) {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -lo;
  for (double v : values) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (values.empty()) return {0.0, 1.0};
  if (from_zero) lo = std::min(lo, 0.0);
  // Nothing but zeros (one worker sends no bytes): a plain 0..5 axis rather than one around 0.
  if (from_zero && lo == 0.0 && hi <= 0.0) hi = 5.0;
  double unit = 1.0;
  while (bytes && std::max(std::abs(lo), std::abs(hi)) / unit >= 1024.0) unit *= 1024.0;
  std::vector<double> ticks = nice_ticks(lo / unit, hi / unit);
  for (double& t : ticks) t *= unit;
  return ticks;
}

std::string text_element(double x, double y, const std::string& text, const std::string& anchor,
                         const std::string& extra = "") {
  return "<text x=\"" + number(x) + "\" y=\"" + number(y) + "\" text-anchor=\"" + anchor + "\"" +
         extra + ">" + escape_xml(text) + "</text>";
}

std::string open_svg(const std::string& id, double height, const std::string& title) {
  return "<svg id=\"" + escape_xml(id) + "\" class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" " +
         "width=\"" + number(kWidth) + "\" height=\"" + number(height) + "\" viewBox=\"0 0 " +
         number(kWidth) + " " + number(height) + "\" role=\"img\" aria-label=\"" +
         escape_xml(title) + "\">" + "<rect class=\"frame\" x=\"0.5\" y=\"0.5\" width=\"" +
         number(kWidth - 1) + "\" height=\"" + number(height - 1) + "\"/>" +
         text_element(kWidth / 2, 22, title, "middle", " class=\"title\"");
}

// A tick value with as many decimals as its step needs (2.305, 2.31 with a step of 0.005), and SI
// prefixes from 1000 on.
std::string format_tick(double value, double step) {
  if (std::abs(value) >= 1000.0 || !(step > 0)) return format_si(value);
  const int decimals = std::clamp(static_cast<int>(-std::floor(std::log10(step) + 1e-9)), 0, 9);
  char text[32];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

// Axes, grid lines and tick labels of a plot area [kLeft, kLeft + w] x [kTop, kTop + h].
struct Axes {
  std::vector<double> x_ticks, y_ticks;
  double w = kWidth - kLeft - kRight;
  double h = kPlotHeight;
  double px(double x) const {
    return kLeft + (x - x_ticks.front()) / (x_ticks.back() - x_ticks.front()) * w;
  }
  double py(double y) const {
    return kTop + h - (y - y_ticks.front()) / (y_ticks.back() - y_ticks.front()) * h;
  }
};

std::string draw_y_axis(const Axes& axes, const std::string& label, bool bytes) {
  std::string svg;
  const double step = axes.y_ticks.size() > 1 ? axes.y_ticks[1] - axes.y_ticks[0] : 1.0;
  for (double t : axes.y_ticks) {
    const double y = axes.py(t);
    svg += "<line class=\"grid\" x1=\"" + number(kLeft) + "\" x2=\"" + number(kLeft + axes.w) +
           "\" y1=\"" + number(y) + "\" y2=\"" + number(y) + "\"/>";
    svg += text_element(kLeft - 6, y + 4, bytes ? format_bytes(t) : format_tick(t, step), "end");
  }
  const double mid = kTop + axes.h / 2;
  svg += text_element(14, mid, label, "middle",
                      " class=\"axis-label\" transform=\"rotate(-90 14 " + number(mid) + ")\"");
  return svg;
}

std::string draw_x_axis(const Axes& axes, const std::string& label, bool bytes) {
  std::string svg;
  const double bottom = kTop + axes.h;
  for (double t : axes.x_ticks) {
    const double x = axes.px(t);
    svg += "<line class=\"grid\" x1=\"" + number(x) + "\" x2=\"" + number(x) + "\" y1=\"" +
           number(kTop) + "\" y2=\"" + number(bottom) + "\"/>";
    svg += text_element(x, bottom + 16, bytes ? format_bytes(t) : format_si(t), "middle");
  }
  svg += text_element(kLeft + axes.w / 2, bottom + 34, label, "middle", " class=\"axis-label\"");
  return svg;
}

// Legend entries in two columns below the plot area, starting at `top`.
std::string draw_legend(double top, const std::vector<std::string>& labels,
                        const std::vector<std::string>& colors, const std::vector<bool>& dashed) {
  std::string svg = "<g class=\"legend\">";
  const double column_width = (kWidth - kLeft) / 2;
  for (size_t i = 0; i < labels.size(); ++i) {
    const double x = kLeft + static_cast<double>(i % 2) * column_width;
    const double y = top + static_cast<double>(i / 2) * kLegendRow;
    const bool dash = i < dashed.size() && dashed[i];
    svg += "<line x1=\"" + number(x) + "\" x2=\"" + number(x + 22) + "\" y1=\"" + number(y - 4) +
           "\" y2=\"" + number(y - 4) + "\" stroke=\"" + colors[i] + "\" stroke-width=\"3\"" +
           (dash ? " stroke-dasharray=\"6 3\"" : "") + "/>";
    svg += text_element(x + 28, y, labels[i], "start");
  }
  return svg + "</g>";
}

double legend_height(size_t entries) {
  return static_cast<double>((entries + 1) / 2) * kLegendRow + 8;
}

bool finite(const PlotPoint& p) {
  return std::isfinite(p.x) && std::isfinite(p.y);
}

std::string draw_series(const Axes& axes, const PlotSeries& series) {
  std::string path, markers;
  for (const PlotPoint& p : series.points) {
    if (!finite(p)) continue;
    const std::string x = number(axes.px(p.x)), y = number(axes.py(p.y));
    path += (path.empty() ? "M" : " L") + x + " " + y;
    markers += "<circle cx=\"" + x + "\" cy=\"" + y + "\" r=\"3\"/>";
  }
  if (path.empty()) return "";
  return "<g class=\"series\" data-label=\"" + escape_xml(series.label) + "\" stroke=\"" +
         series.color + "\" fill=\"" + series.color + "\"><path d=\"" + path +
         "\" fill=\"none\" stroke-width=\"2\"" +
         (series.dashed ? " stroke-dasharray=\"6 3\"" : "") + "/>" + markers + "</g>";
}

}  // namespace

std::string escape_xml(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string format_si(double value) {
  if (!std::isfinite(value)) return "-";
  static const char* const kPrefixes[] = {"", "k", "M", "G", "T", "P", "E"};
  double scaled = value;
  size_t prefix = 0;
  while (std::abs(scaled) >= 1000.0 && prefix + 1 < std::size(kPrefixes)) {
    scaled /= 1000.0;
    ++prefix;
  }
  char text[32];
  // %.3g would write 999.7 as "1e+03".
  std::snprintf(text, sizeof text, std::abs(scaled) >= 999.5 ? "%.0f%s" : "%.3g%s", scaled,
                kPrefixes[prefix]);
  return text;
}

std::string format_bytes(double bytes) {
  if (!std::isfinite(bytes)) return "-";
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double scaled = bytes;
  size_t unit = 0;
  while (std::abs(scaled) >= 1024.0 && unit + 1 < std::size(kUnits)) {
    scaled /= 1024.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 || std::abs(scaled) >= 999.5 ? "%.0f %s" : "%.3g %s",
                scaled, kUnits[unit]);
  return text;
}

const std::string& series_color(size_t index) {
  // Tableau 10: distinguishable lines, also for the common colour-vision deficiencies.
  static const std::vector<std::string> kPalette = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2",
                                                    "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                                                    "#9c755f", "#bab0ac"};
  return kPalette[index % kPalette.size()];
}

std::string line_plot_svg(const LinePlot& plot) {
  std::vector<double> xs, ys;
  for (const auto& s : plot.series)
    for (const auto& p : s.points)
      if (finite(p)) {
        xs.push_back(p.x);
        ys.push_back(p.y);
      }
  Axes axes;
  axes.x_ticks = ticks_for(xs, /*from_zero=*/true, plot.x_bytes);
  axes.y_ticks = ticks_for(ys, /*from_zero=*/false);
  std::vector<std::string> labels, colors;
  std::vector<bool> dashed;
  for (const auto& s : plot.series) {
    labels.push_back(s.label);
    colors.push_back(s.color);
    dashed.push_back(s.dashed);
  }
  const double legend_top = kTop + kPlotHeight + kAxisBelow + 12;
  const double height = legend_top + legend_height(labels.size());
  std::string svg = open_svg(plot.id, height, plot.title);
  svg += draw_y_axis(axes, plot.y_label, /*bytes=*/false);
  svg += draw_x_axis(axes, plot.x_label, plot.x_bytes);
  if (xs.empty())
    svg += text_element(kLeft + axes.w / 2, kTop + kPlotHeight / 2, "no data", "middle",
                        " class=\"no-data\"");
  for (const auto& s : plot.series) svg += draw_series(axes, s);
  svg += draw_legend(legend_top, labels, colors, dashed);
  return svg + "</svg>";
}

std::string stacked_bar_svg(const StackedBarChart& chart) {
  std::vector<double> totals;
  for (const auto& bar : chart.bars) {
    double total = 0.0;
    for (double v : bar.values) total += std::max(v, 0.0);
    totals.push_back(total);
  }
  Axes axes;
  axes.x_ticks = {0.0, 1.0};
  axes.y_ticks = ticks_for(totals, /*from_zero=*/true, chart.bytes);
  const double legend_top = kTop + kPlotHeight + kAxisBelow + 12;
  const double height = legend_top + legend_height(chart.segment_labels.size());
  std::string svg = open_svg(chart.id, height, chart.title);
  svg += draw_y_axis(axes, chart.y_label, chart.bytes);
  const double slot = axes.w / static_cast<double>(std::max<size_t>(chart.bars.size(), 1));
  const double bar_width = std::min(slot * 0.7, 60.0);
  const double bottom = kTop + kPlotHeight;
  for (size_t b = 0; b < chart.bars.size(); ++b) {
    const StackedBar& bar = chart.bars[b];
    const double x = kLeft + slot * (static_cast<double>(b) + 0.5);
    double base = 0.0;
    svg += "<g class=\"bar\" data-label=\"" + escape_xml(bar.label) + "\">";
    for (size_t k = 0; k < bar.values.size() && k < chart.segment_colors.size(); ++k) {
      const double v = std::max(bar.values[k], 0.0);
      const double top = axes.py(base + v);
      svg += "<rect x=\"" + number(x - bar_width / 2) + "\" y=\"" + number(top) + "\" width=\"" +
             number(bar_width) + "\" height=\"" + number(axes.py(base) - top) + "\" fill=\"" +
             chart.segment_colors[k] + "\"><title>" + escape_xml(bar.label) + ": " +
             escape_xml(chart.segment_labels[k]) + " " +
             escape_xml(chart.bytes ? format_bytes(v) : format_si(v)) + "</title></rect>";
      base += v;
    }
    // The total above the bar, so that the height need not be read off the axis.
    if (base > 0)
      svg += text_element(x, axes.py(base) - 4, chart.bytes ? format_bytes(base) : format_si(base),
                          "middle", " class=\"bar-total\"");
    svg += text_element(x, bottom + 14, bar.label, "middle", " class=\"bar-label\"") + "</g>";
  }
  if (chart.bars.empty())
    svg += text_element(kLeft + axes.w / 2, kTop + kPlotHeight / 2, "no data", "middle",
                        " class=\"no-data\"");
  svg += draw_legend(legend_top, chart.segment_labels, chart.segment_colors, {});
  return svg + "</svg>";
}

std::string unit_grid_svg(const UnitGrid& grid) {
  const size_t rows = grid.row_labels.size();
  const size_t columns = grid.column_labels.size();
  const double label_width = 80;
  const double cell_w = std::clamp(
      (kWidth - label_width - kRight) / static_cast<double>(std::max<size_t>(columns, 1)), 1.0,
      24.0);
  const double cell_h = 18;
  const double top = kTop + 6;
  const double bottom = top + cell_h * static_cast<double>(rows);
  std::string svg = open_svg(grid.id, bottom + 40, grid.title);
  std::string previous_group;
  double label_end = 0;  // where the last group name drawn ends: names must not overlap
  for (size_t c = 0; c < columns; ++c) {
    const std::string& group = c < grid.column_groups.size() ? grid.column_groups[c] : "";
    if (c > 0 && group == previous_group) continue;
    previous_group = group;
    const double x = label_width + cell_w * static_cast<double>(c);
    svg += "<line class=\"group-sep\" x1=\"" + number(x) + "\" x2=\"" + number(x) + "\" y1=\"" +
           number(top - 4) + "\" y2=\"" + number(bottom + 4) + "\"/>";
    if (x < label_end) continue;
    svg += text_element(x + 2, bottom + 18, group, "start", " class=\"group-label\"");
    label_end = x + 8 + 6.0 * static_cast<double>(group.size());
  }
  for (size_t r = 0; r < rows; ++r) {
    const double y = top + cell_h * static_cast<double>(r);
    svg += text_element(label_width - 6, y + cell_h * 0.7, grid.row_labels[r], "end");
    for (size_t c = 0; c < columns; ++c) {
      const double held = r < grid.held.size() && c < grid.held[r].size() ? grid.held[r][c] : 0.0;
      const bool changed =
          r < grid.changed.size() && c < grid.changed[r].size() && grid.changed[r][c];
      char fill[16];
      // From #eeeeee (none held) to #4e79a7 (all held).
      const auto mix = [held](int none, int all) {
        return static_cast<int>(std::lround(none + (all - none) * std::clamp(held, 0.0, 1.0)));
      };
      std::snprintf(fill, sizeof fill, "#%02x%02x%02x", mix(0xee, 0x4e), mix(0xee, 0x79),
                    mix(0xee, 0xa7));
      char percent[16];
      std::snprintf(percent, sizeof percent, "%.0f%%", 100.0 * held);
      svg += "<rect class=\"unit" + std::string(changed ? " changed" : "") + "\" x=\"" +
             number(label_width + cell_w * static_cast<double>(c)) + "\" y=\"" + number(y) +
             "\" width=\"" + number(std::max(cell_w - (cell_w > 3 ? 1 : 0), 0.5)) + "\" height=\"" +
             number(cell_h - 2) + "\" fill=\"" + fill + "\"><title>" +
             escape_xml(grid.row_labels[r]) + ", " + escape_xml(grid.column_labels[c]) +
             ": holds " + percent + (changed ? " (changed)" : "") + "</title></rect>";
    }
  }
  return svg + "</svg>";
}

}  // namespace tessera::report
