// `tessera report` opened in a real browser (headless Chromium): the runs of plain training, of
// SDP and of a PNN comparison, made here at toy size. The page must load without a single console
// message (Chromium reports malformed SVG there), hold every expected chart with data in the
// DOM, and render to a screenshot (kept in <build>/report-screenshots/ to be looked at).
// Without a browser the tests are skipped, saying why (scripts/install-deps.sh --browser).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "../command_output.h"
#include "../test_support.h"

namespace {

using tessera::testing::fresh_dir;
using tessera::testing::run_command;

const char* const kData =
    "--data synthetic --synthetic-train 512 --synthetic-test 128 --synthetic-shape 1,8,8 "
    "--hidden 32,32 --batch-size 64 --lr 0.01 --log-every 2 --threads 1 --quiet --seed 3";

// TESSERA_BROWSER, else Debian's chromium-headless-shell or chromium; "" if none.
std::string find_browser() {
  if (const char* chosen = std::getenv("TESSERA_BROWSER"); chosen != nullptr && *chosen != 0)
    return ::access(chosen, X_OK) == 0 ? chosen : "";
  for (const char* path : {"/usr/bin/chromium-headless-shell", "/usr/bin/chromium"})
    if (::access(path, X_OK) == 0) return path;
  return "";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string run_tessera(const std::string& args) {
  const auto r = run_command(std::string(TESSERA_BINARY) + " " + args + " 2>&1");
  EXPECT_EQ(r.code, 0) << args << "\n" << r.output;
  return r.output;
}

class ReportBrowser : public ::testing::Test {
 protected:
  void SetUp() override {
    browser_ = find_browser();
    if (browser_.empty())
      GTEST_SKIP() << "no headless Chromium (TESSERA_BROWSER, /usr/bin/chromium-headless-shell or "
                      "/usr/bin/chromium): install it with scripts/install-deps.sh --browser";
  }

  // The browser's command line for `page`; the full chromium needs --headless, the shell is.
  std::string browser_command(const std::string& flags, const std::string& page) const {
    const bool shell = browser_.find("headless-shell") != std::string::npos;
    return browser_ + (shell ? "" : " --headless") +
           " --no-sandbox --disable-gpu --no-first-run --hide-scrollbars " + flags + " file://" +
           page;
  }

  // Opens `page`; checks that it loads without console messages and that every id in `ids` is
  // an element holding data; saves a screenshot named `name`.png. Returns the DOM.
  std::string open_and_check(const std::string& page, const std::vector<std::string>& ids,
                             const std::string& name) {
    const std::string log = page + ".browser.log";
    const auto dom = run_command(browser_command("--enable-logging=stderr --v=0 --dump-dom", page) +
                                 " 2>" + log);
    EXPECT_EQ(dom.code, 0) << read_file(log);
    std::istringstream lines(read_file(log));
    for (std::string line; std::getline(lines, line);)
      EXPECT_EQ(line.find(":CONSOLE"), std::string::npos) << "console message: " << line;
    for (const auto& id : ids) {
      const size_t at = dom.output.find("id=\"" + id + "\"");
      EXPECT_NE(at, std::string::npos) << "no element " << id;
      if (at == std::string::npos) continue;
      const std::string element = dom.output.substr(at, dom.output.find("</svg>", at) - at);
      EXPECT_EQ(element.find("no data"), std::string::npos) << id << " has no data";
    }
    const std::string dir = std::filesystem::current_path().string() + "/report-screenshots";
    std::filesystem::create_directories(dir);
    const std::string png = dir + "/" + name + ".png";
    std::filesystem::remove(png);
    const auto shot =
        run_command(browser_command("--window-size=1920,4400 --screenshot=" + png, page) + " 2>&1");
    EXPECT_EQ(shot.code, 0) << shot.output;
    EXPECT_TRUE(std::filesystem::exists(png)) << shot.output;
    if (std::filesystem::exists(png)) {
      EXPECT_GT(std::filesystem::file_size(png), 20000u) << "a blank screenshot?";
      std::cout << "screenshot: " << png << "\n";
    }
    return dom.output;
  }

  std::string browser_;
};

const std::vector<std::string> kEveryRunsCharts = {
    "plot-accuracy-samples", "plot-accuracy-flops", "plot-accuracy-wall",  "plot-accuracy-bytes",
    "plot-train-loss",       "plot-memory-0",       "plot-bytes-per-step", "summary-table"};

TEST_F(ReportBrowser, PlainTrainingRun) {
  const std::string dir = fresh_dir("report_browser_train");
  run_tessera(std::string("train ") + kData + " --epochs 2 --evals-per-epoch 2 " + "--run-dir " +
              dir + "/mlp");
  run_tessera("report " + dir + "/mlp --out " + dir + "/report.html");
  const std::string dom = open_and_check(dir + "/report.html", kEveryRunsCharts, "train");
  EXPECT_NE(dom.find("data-label=\"mlp\""), std::string::npos);
}

TEST_F(ReportBrowser, SdpRunWithPlanChangesBesideDdp) {
  const std::string dir = fresh_dir("report_browser_sdp");
  run_tessera(
      "launch -n 2 -- tessera train --dist sdp --sdp-level neuron --coverage 0.5 "
      "--sdp-redraw-epochs 1 --epochs 2 " +
      std::string(kData) + " --run-dir " + dir + "/sdp");
  run_tessera("launch -n 2 -- tessera train --dist ddp --epochs 2 " + std::string(kData) +
              " --run-dir " + dir + "/ddp");
  run_tessera("report " + dir + "/sdp " + dir + "/ddp --out " + dir + "/report.html");
  std::vector<std::string> ids = kEveryRunsCharts;
  // The first plan and the change after epoch 1; both runs' memory per rank.
  for (const char* id : {"sdp-plan-0-0", "sdp-plan-0-1", "plot-memory-1"}) ids.push_back(id);
  const std::string dom = open_and_check(dir + "/report.html", ids, "sdp");
  EXPECT_NE(dom.find("after epoch 1"), std::string::npos);
  EXPECT_NE(dom.find("data-label=\"rank 1\""), std::string::npos);
  // Every rank recorded its memory's parts (summary.json ranks), not only its peak.
  EXPECT_EQ(dom.find("parts not recorded"), std::string::npos);
  EXPECT_EQ(dom.find("sdp-plan-1-0"), std::string::npos) << "ddp has no plan";
}

TEST_F(ReportBrowser, PnnComparisonWrittenByThePnnCommand) {
  const std::string dir = fresh_dir("report_browser_pnn");
  const std::string out =
      run_tessera(std::string("pnn --compare --pnn-schedule sequential,parallel ") + kData +
                  " --cuts 1 --epochs 1 --run-dir " + dir + "/cmp");
  // tessera pnn --compare writes the report of its own run and says where.
  EXPECT_NE(out.find("report: " + dir + "/cmp/report.html"), std::string::npos) << out;
  std::vector<std::string> ids = {"plot-accuracy-flops", "plot-train-loss",  "plot-memory-0",
                                  "plot-memory-1",       "plot-memory-2",    "pnn-comparison-0",
                                  "pnn-partitions-1",    "pnn-partitions-2", "summary-table"};
  const std::string dom = open_and_check(dir + "/cmp/report.html", ids, "pnn");
  for (const char* label : {"cmp: conventional", "cmp: pnn sequential", "cmp: pnn parallel"})
    EXPECT_NE(dom.find(std::string("data-label=\"") + label + "\""), std::string::npos) << label;
  EXPECT_NE(dom.find("<td>conventional</td>"), std::string::npos) << "the conventional row";
}

}  // namespace
