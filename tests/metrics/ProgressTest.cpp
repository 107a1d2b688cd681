#include "tessera/metrics/progress.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "tessera/core/error.h"

namespace tessera::metrics {
namespace {

// A temporary file that is deleted when closed, and its whole content.
class TempOutput {
 public:
  TempOutput() : file_(std::tmpfile(), &std::fclose) {}
  std::FILE* get() const { return file_.get(); }
  std::string content() const {
    std::fflush(file_.get());
    std::rewind(file_.get());
    std::string text;
    for (int c; (c = std::fgetc(file_.get())) != EOF;) text.push_back(static_cast<char>(c));
    return text;
  }

 private:
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_;
};

TEST(ProgressTest, PlainModeLogsEveryNStepsAndTheLastOne) {
  TempOutput out;
  ASSERT_NE(out.get(), nullptr);
  {
    Progress progress(out.get(), /*log_every=*/2, /*interactive=*/false);
    progress.start_epoch(1, 3, 5);
    // One second per step, so the ETA is the number of remaining steps in seconds.
    for (int64_t s = 1; s <= 5; ++s) progress.step_at(s, 1.0 / s, 1234.4, static_cast<double>(s));
    progress.end_epoch("epoch 1: train loss 0.2");
  }
  EXPECT_EQ(out.content(),
            "epoch 1/3 step 2/5 loss 0.5000 1234 samples/s ETA 3s\n"
            "epoch 1/3 step 4/5 loss 0.2500 1234 samples/s ETA 1s\n"
            "epoch 1/3 step 5/5 loss 0.2000 1234 samples/s ETA 0s\n"
            "epoch 1: train loss 0.2\n");
}

TEST(ProgressTest, InteractiveModeRedrawsOneLine) {
  TempOutput out;
  {
    Progress progress(out.get(), /*log_every=*/100, /*interactive=*/true);
    progress.start_epoch(2, 3, 100);
    // 50 of 100 steps in 65 s: 65 s to go.
    progress.step_at(50, 0.4321, 1234.0, 65.0);
    progress.step_at(100, 0.25, 2000.0, 130.0);
    progress.end_epoch("summary");
  }
  EXPECT_EQ(out.content(),
            "\repoch 2/3 [#####.....] step 50/100 loss 0.4321 1234 samples/s ETA 1m05s"
            // Two characters shorter than the first line: blanked with two spaces.
            "\repoch 2/3 [##########] step 100/100 loss 0.2500 2000 samples/s ETA 0s  "
            "\nsummary\n");
}

TEST(ProgressTest, InteractiveRedrawBlanksALongerPreviousLine) {
  TempOutput out;
  Progress progress(out.get(), 1, true);
  progress.start_epoch(1, 1, 10);
  progress.step_at(1, 0.5, 123456.0, 1.0);  // "... 123456 samples/s ETA 9s"
  progress.step_at(2, 0.5, 1.0, 2.0);       // five characters shorter: "... 1 samples/s ETA 8s"
  const std::string content = out.content();
  const std::string second = content.substr(content.rfind('\r') + 1);
  EXPECT_EQ(second, "epoch 1/1 [##........] step 2/10 loss 0.5000 1 samples/s ETA 8s     ");
}

TEST(ProgressTest, InteractiveRedrawsAtMostTenTimesASecond) {
  TempOutput out;
  Progress progress(out.get(), 1, true);
  progress.start_epoch(1, 1, 100);
  progress.step_at(1, 0.5, 10.0, 0.01);    // first bar: drawn
  progress.step_at(2, 0.5, 10.0, 0.05);    // 0.04 s later: skipped
  progress.step_at(3, 0.5, 10.0, 0.2);     // 0.19 s after the last draw: drawn
  progress.step_at(100, 0.5, 10.0, 0.21);  // the last step: always drawn
  const std::string content = out.content();
  EXPECT_EQ(std::count(content.begin(), content.end(), '\r'), 3);
  EXPECT_EQ(content.find("step 2/100"), std::string::npos);
  EXPECT_NE(content.find("step 3/100"), std::string::npos);
  EXPECT_NE(content.find("step 100/100"), std::string::npos);
}

TEST(ProgressTest, DestructorEndsAnOpenBarLine) {
  TempOutput out;
  {
    Progress progress(out.get(), 1, true);
    progress.start_epoch(1, 1, 4);
    progress.step_at(1, 1.0, 10.0, 2.0);
  }
  EXPECT_EQ(out.content(), "\repoch 1/1 [##........] step 1/4 loss 1.0000 10 samples/s ETA 6s\n");
  // A summary from another Progress object (as the trainer does) starts on a fresh line.
  Progress(out.get(), 1, true).end_epoch("done");
  EXPECT_EQ(out.content().substr(out.content().size() - 8), "6s\ndone\n");
}

TEST(ProgressTest, NonTerminalOutputIsPlainByDefault) {
  TempOutput out;
  {
    Progress progress(out.get(), 1);
    progress.start_epoch(1, 1, 1);
    progress.step(1, 0.125, 8.0);  // measured ETA: the last step leaves 0 s
  }
  EXPECT_EQ(out.content(), "epoch 1/1 step 1/1 loss 0.1250 8 samples/s ETA 0s\n");
}

TEST(ProgressTest, RejectsLogEveryBelowOne) {
  TempOutput out;
  EXPECT_THROW(Progress(out.get(), 0, false), UsageError);
}

TEST(ProgressTest, FormatsDurations) {
  EXPECT_EQ(Progress::format_duration(0.0), "0s");
  EXPECT_EQ(Progress::format_duration(42.0), "42s");
  EXPECT_EQ(Progress::format_duration(59.4), "59s");
  EXPECT_EQ(Progress::format_duration(59.6), "1m00s");  // rounded before splitting
  EXPECT_EQ(Progress::format_duration(65.0), "1m05s");
  EXPECT_EQ(Progress::format_duration(3599.0), "59m59s");
  EXPECT_EQ(Progress::format_duration(3600.0), "1h00m");
  EXPECT_EQ(Progress::format_duration(2 * 3600 + 3 * 60 + 59), "2h03m");  // seconds dropped
  EXPECT_EQ(Progress::format_duration(125 * 3600.0), "125h00m");
  EXPECT_EQ(Progress::format_duration(-1.0), "?");
  EXPECT_EQ(Progress::format_duration(std::nan("")), "?");
  EXPECT_EQ(Progress::format_duration(std::numeric_limits<double>::infinity()), "?");
}

}  // namespace
}  // namespace tessera::metrics
