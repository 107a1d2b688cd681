// The live progress of several workers: the text of a line (a pure function of the state), the
// record a worker sends its launcher, and the board the launcher draws from them.
#include "tessera/metrics/progress_board.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>

#include <gtest/gtest.h>

#include "tessera/metrics/progress.h"

namespace tessera::metrics {
namespace {

ProgressState state(int64_t step, double loss) {
  ProgressState s;
  s.epoch = 2;
  s.total_epochs = 3;
  s.step = step;
  s.steps_in_epoch = 100;
  s.loss = loss;
  s.samples_per_second = 1234.4;
  s.elapsed_seconds = 65.0 * static_cast<double>(step) / 50.0;  // 1.3 s per step
  return s;
}

TEST(ProgressBoardTest, LineTextsOfAState) {
  EXPECT_EQ(status_text(state(50, 0.4321)), "step 50/100 loss 0.4321 1234 samples/s ETA 1m05s");
  EXPECT_EQ(bar_text(state(50, 0.4321)),
            "epoch 2/3 [#####.....] step 50/100 loss 0.4321 1234 samples/s ETA 1m05s");
  EXPECT_EQ(bar_text(state(0, 0.0)).find("ETA ?"), bar_text(state(0, 0.0)).size() - 5)
      << "no step yet: no ETA";
}

TEST(ProgressBoardTest, RecordsRoundTripAndOtherLinesAreNotRecords) {
  const ProgressState s = state(30, 0.25);
  const std::string line = format_progress_record(s);
  EXPECT_EQ(line.rfind("@tessera-progress {", 0), 0u) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const auto back = parse_progress_record(line);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(bar_text(*back), bar_text(s));

  ProgressState diverged = s;
  diverged.loss = std::nan("");
  const auto nan_back = parse_progress_record(format_progress_record(diverged));
  ASSERT_TRUE(nan_back.has_value());
  EXPECT_TRUE(std::isnan(nan_back->loss));

  EXPECT_FALSE(parse_progress_record("epoch 1: train loss 0.5").has_value());
  EXPECT_FALSE(parse_progress_record("@tessera-progress {broken").has_value());
  EXPECT_FALSE(parse_progress_record("@tessera-progress 3").has_value());
}

TEST(ProgressBoardTest, BoardHasOneLinePerWorkerCutToTheWidth) {
  std::vector<WorkerProgress> workers = {{"rank 0", state(50, 0.5), ""},
                                         {"rank 1", std::nullopt, ""},
                                         {"rank 2", state(100, 0.125), "done"}};
  const auto lines = render_board(workers, 200);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0],
            "[rank 0] epoch 2/3 [#####.....] step 50/100 loss 0.5000 1234 samples/s ETA 1m05s");
  EXPECT_EQ(lines[1], "[rank 1] starting");
  EXPECT_EQ(
      lines[2],
      "[rank 2] epoch 2/3 [##########] step 100/100 loss 0.1250 1234 samples/s ETA 0s | done");
  for (const auto& line : render_board(workers, 20)) EXPECT_LE(line.size(), 20u) << line;
  EXPECT_EQ(render_board(workers, 20)[0], "[rank 0] epoch 2/3 [");
}

// Everything a Progress wrote to a temporary file.
std::string written(const std::function<void(Progress&)>& use, ProgressMode mode) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::tmpfile(), &std::fclose);
  {
    Progress progress(file.get(), 2, mode);
    use(progress);
  }
  std::fflush(file.get());
  std::rewind(file.get());
  std::string text;
  for (int c; (c = std::fgetc(file.get())) != EOF;) text.push_back(static_cast<char>(c));
  return text;
}

TEST(ProgressBoardTest, RecordModeSendsAtMostFourASecondAndTheLastStep) {
  const std::string text = written(
      [](Progress& p) {
        p.start_epoch(1, 1, 10);
        p.step_at(1, 0.5, 10.0, 0.1);    // the first: sent
        p.step_at(2, 0.5, 10.0, 0.2);    // 0.1 s later: not
        p.step_at(3, 0.5, 10.0, 0.4);    // 0.3 s after the first: sent
        p.step_at(10, 0.5, 10.0, 0.45);  // the last step: always
        p.end_epoch("epoch 1: train loss 0.5");
      },
      ProgressMode::Records);
  std::vector<std::string> lines;
  for (size_t start = 0, end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
    lines.push_back(text.substr(start, end - start));
  ASSERT_EQ(lines.size(), 4u) << text;
  EXPECT_EQ(parse_progress_record(lines[0])->step, 1);
  EXPECT_EQ(parse_progress_record(lines[1])->step, 3);
  EXPECT_EQ(parse_progress_record(lines[2])->step, 10);
  EXPECT_EQ(lines[3], "epoch 1: train loss 0.5") << "the summary stays an ordinary line";
}

TEST(ProgressBoardTest, TheEnvironmentChoosesRecordsOverAPipe) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::tmpfile(), &std::fclose);
  ::unsetenv(kLiveProgressEnv);
  EXPECT_EQ(Progress(file.get(), 1).mode(), ProgressMode::Lines) << "not a terminal: as before";
  ::setenv(kLiveProgressEnv, "1", 1);
  EXPECT_TRUE(live_progress_requested());
  EXPECT_EQ(Progress(file.get(), 1).mode(), ProgressMode::Records);
  ::setenv(kLiveProgressEnv, "0", 1);
  EXPECT_EQ(Progress(file.get(), 1).mode(), ProgressMode::Lines);
  ::unsetenv(kLiveProgressEnv);
}

}  // namespace
}  // namespace tessera::metrics
