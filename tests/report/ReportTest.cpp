// The report's pieces without a browser: number formats, charts, reading run directories (and
// refusing what is not one), and `tessera report`'s errors as a user meets them.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "../command_output.h"
#include "../test_support.h"
#include "tessera/core/error.h"
#include "tessera/report/html_page.h"
#include "tessera/report/read_run.h"
#include "tessera/report/report.h"
#include "tessera/report/svg_plot.h"

namespace tessera::report {
namespace {

using tessera::testing::fresh_dir;

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// A minimal finished run of `tessera train`: two evaluations, one epoch record each.
void write_train_run(const std::string& dir, bool elapsed) {
  std::filesystem::create_directories(dir);
  nlohmann::json history = nlohmann::json::array();
  history.push_back(
      {{"epoch", 1.0}, {"train_samples", 100}, {"test_accuracy", 0.5}, {"test_loss", 1.5}});
  history.push_back(
      {{"epoch", 2.0}, {"train_samples", 200}, {"test_accuracy", 0.75}, {"test_loss", 1.0}});
  if (elapsed) {
    history[0]["elapsed_seconds"] = 7.0;
    history[1]["elapsed_seconds"] = 13.0;
  }
  const nlohmann::json summary = {{"history", history},
                                  {"train_samples", 200},
                                  {"train_flops", 2000},
                                  {"steps", 4},
                                  {"epochs", 2},
                                  {"comm_bytes", 0},
                                  {"peak_tensor_bytes", 1000},
                                  {"param_bytes", 100},
                                  {"grad_bytes", 100},
                                  {"optimizer_state_bytes", 200},
                                  {"test_accuracy", 0.75},
                                  {"test_loss", 1.0},
                                  {"wall_seconds", 14.0},
                                  {"parameters", 25}};
  write_text(dir + "/summary.json", summary.dump());
  write_text(dir + "/config.json",
             nlohmann::json{{"command", "train"}, {"model", {{"arch", "mlp"}}}}.dump());
  write_text(dir + "/metrics.jsonl",
             "{\"type\":\"epoch\",\"epoch\":1,\"epoch_seconds\":5.0,\"train_loss\":2.0}\n"
             "{\"type\":\"epoch\",\"epoch\":2,\"epoch_seconds\":4.0,\"train_loss\":1.2}\n");
}

TEST(ReportFormat, NumbersAndBytes) {
  EXPECT_EQ(format_si(0), "0");
  EXPECT_EQ(format_si(875), "875");
  EXPECT_EQ(format_si(1.2e11), "120G");
  EXPECT_EQ(format_si(0.25), "0.25");
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(3 * 1024 * 1024), "3 MiB");
  EXPECT_EQ(format_bytes(1.5 * 1024 * 1024 * 1024), "1.5 GiB");
  EXPECT_EQ(escape_xml("a<b & \"c\">'"), "a&lt;b &amp; &quot;c&quot;&gt;&#39;");
}

TEST(ReportSvg, LinePlotHasItsSeriesLegendAndEscapedLabels) {
  LinePlot plot{"plot-x", "accuracy", "samples", "%", {}};
  plot.series.push_back({"run <a>", series_color(0), {{0, 50}, {100, 75}}, false});
  plot.series.push_back({"run b", series_color(1), {{50, 60}, {NAN, 1}}, true});
  const std::string svg = line_plot_svg(plot);
  EXPECT_EQ(svg.rfind("<svg id=\"plot-x\" class=\"plot\"", 0), 0u);
  EXPECT_NE(svg.find("data-label=\"run &lt;a&gt;\""), std::string::npos);
  EXPECT_NE(svg.find("data-label=\"run b\""), std::string::npos);
  EXPECT_EQ(svg.find("run <a>"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos) << "a non-finite point is skipped";
  // Run a: two markers, run b: one (its NaN point skipped).
  size_t circles = 0;
  for (size_t at = svg.find("<circle"); at != std::string::npos; at = svg.find("<circle", at + 1))
    ++circles;
  EXPECT_EQ(circles, 3u);
  EXPECT_EQ(line_plot_svg({"empty", "t", "x", "y", {}}).find("no data") == std::string::npos,
            false);
}

TEST(ReportRead, TrainingRunFromItsFiles) {
  const std::string dir = fresh_dir("report_read_train") + "/run";
  write_train_run(dir, /*elapsed=*/false);
  const report::Run run = read_training_run(dir, "run");
  ASSERT_EQ(run.evaluations.size(), 2u);
  EXPECT_DOUBLE_EQ(run.evaluations[1].train_samples, 200);
  EXPECT_DOUBLE_EQ(run.evaluations[1].train_flops, 2000);  // 10 FLOPs per sample
  // No elapsed_seconds: the epochs' epoch_seconds, summed, and said so.
  EXPECT_FALSE(run.wall_measured);
  EXPECT_DOUBLE_EQ(run.evaluations[0].wall_seconds, 5.0);
  EXPECT_DOUBLE_EQ(run.evaluations[1].wall_seconds, 9.0);
  ASSERT_FALSE(run.notes.empty());
  EXPECT_NE(run.notes[0].find("epoch_seconds"), std::string::npos);
  ASSERT_EQ(run.train_loss.size(), 2u);
  EXPECT_DOUBLE_EQ(run.train_loss[1].first, 200);
  EXPECT_DOUBLE_EQ(run.train_loss[1].second, 1.2);
  ASSERT_EQ(run.memory.size(), 1u);
  EXPECT_DOUBLE_EQ(run.memory[0].rest(), 600);

  write_train_run(dir, /*elapsed=*/true);
  const report::Run measured = read_training_run(dir, "run");
  EXPECT_TRUE(measured.wall_measured);
  EXPECT_DOUBLE_EQ(measured.evaluations[1].wall_seconds, 13.0);
}

TEST(ReportRead, SdpPlansInTrainingOrderWithTheirUnits) {
  const std::string dir = fresh_dir("report_read_sdp");
  const auto plan = [](std::vector<int> w0, std::vector<int> w1) {
    return nlohmann::json{{"subnets", {{{"stage0.neurons", w0}}, {{"stage0.neurons", w1}}}}}.dump();
  };
  write_text(dir + "/sdp_plan.json", plan({0, 1}, {2, 3}));
  write_text(dir + "/sdp_plan_epoch10.json", plan({0, 3}, {1, 2}));
  write_text(dir + "/sdp_plan_epoch2.json", plan({1, 2}, {0, 3}));
  const std::vector<SdpPlan> plans = read_sdp_plans(dir);
  ASSERT_EQ(plans.size(), 3u);
  EXPECT_EQ(plans[1].label, "after epoch 2");  // numerically, not by file name
  EXPECT_EQ(plans[2].label, "after epoch 10");
  ASSERT_EQ(plans[0].unit_labels.size(), 4u);
  EXPECT_EQ(plans[0].unit_labels[3], "stage0.neurons:3");
  EXPECT_EQ(plans[1].held[0], (std::vector<bool>{false, true, true, false}));

  write_text(dir + "/sdp_plan_step5.json", "{\"subnets\": 3}");
  EXPECT_THROW(read_sdp_plans(dir), Error);
}

// The message of the error reading `path` throws, or "" if it reads.
std::string read_error(const std::string& path) {
  ReportData data;
  try {
    read_run_directory(path, "x", data);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ReportRead, BadDirectoriesAreNamedErrors) {
  const std::string root = fresh_dir("report_read_bad");
  EXPECT_NE(read_error(root + "/missing").find(root + "/missing does not exist"),
            std::string::npos);
  write_text(root + "/file", "x");
  EXPECT_NE(read_error(root + "/file").find("is not a directory"), std::string::npos);
  std::filesystem::create_directories(root + "/empty");
  EXPECT_NE(read_error(root + "/empty").find("no summary.json"), std::string::npos);

  write_train_run(root + "/corrupt", false);
  write_text(root + "/corrupt/summary.json", "{\"history\": [");
  EXPECT_NE(read_error(root + "/corrupt").find(root + "/corrupt/summary.json is not valid JSON"),
            std::string::npos);

  write_train_run(root + "/lines", false);
  write_text(root + "/lines/metrics.jsonl", "{\"type\":\"epoch\"}\n{oops\n");
  EXPECT_NE(read_error(root + "/lines").find(root + "/lines/metrics.jsonl:2 is not valid JSON"),
            std::string::npos);

  write_train_run(root + "/good", false);
  EXPECT_EQ(read_error(root + "/good"), "");
}

TEST(ReportNames, UniqueByParentWhenTheLastComponentsCollide) {
  EXPECT_EQ(run_names({"runs/a", "runs/b/"}), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(run_names({"x/run", "y/run", "z"}), (std::vector<std::string>{"x/run", "y/run", "z"}));
}

TEST(ReportPage, SelfContainedWithEveryChart) {
  const std::string dir = fresh_dir("report_page") + "/run";
  write_train_run(dir, false);
  ReportData data;
  read_run_directory(dir, "run", data);
  const std::string html = render_html(data, {dir});
  for (const char* id :
       {"plot-accuracy-samples", "plot-accuracy-flops", "plot-accuracy-wall", "plot-accuracy-bytes",
        "plot-train-loss", "plot-memory-0", "plot-bytes-per-step", "summary-table"})
    EXPECT_NE(html.find(std::string("id=\"") + id + "\""), std::string::npos) << id;
  // Nothing is fetched: no script, stylesheet or image from anywhere.
  for (const char* outside : {"<script", "<link", "src=", "http://", "https://", "@import"}) {
    const std::string needle = outside;
    // The SVG namespace is an identifier, not a fetch.
    std::string rest = html;
    for (size_t at; (at = rest.find("http://www.w3.org/2000/svg")) != std::string::npos;)
      rest.erase(at, 26);
    EXPECT_EQ(rest.find(needle), std::string::npos) << needle;
  }
  EXPECT_NE(html.find("summed epoch_seconds"), std::string::npos) << "the wall axis says so";
}

using tessera::testing::run_command;

testing::CommandResult report(const std::string& args) {
  return run_command(std::string(TESSERA_BINARY) + " report " + args + " 2>&1");
}

TEST(ReportCli, WritesThePageAndRefusesBadInput) {
  const std::string root = fresh_dir("report_cli");
  write_train_run(root + "/run", false);
  auto r = report(root + "/run --out " + root + "/page.html");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("report: " + root + "/page.html"), std::string::npos) << r.output;
  EXPECT_TRUE(std::filesystem::exists(root + "/page.html"));
  EXPECT_FALSE(std::filesystem::exists(root + "/page.html.tmp"));

  r = report(root + "/nothing --out " + root + "/x.html");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find(root + "/nothing does not exist"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(root + "/x.html"));

  r = report(root + "/run --out " + root + "/no/such/dir/x.html");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--out"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("does not exist"), std::string::npos) << r.output;

  r = report(root + "/run --out " + root);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("is a directory"), std::string::npos) << r.output;

  r = report("--out " + root + "/x.html");
  EXPECT_EQ(r.code, 2) << r.output;
}

}  // namespace
}  // namespace tessera::report
