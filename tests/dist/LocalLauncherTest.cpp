#include "tessera/dist/local_launcher.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "tessera/core/error.h"
#include "tessera/metrics/timer.h"

namespace tessera::dist {
namespace {

WorkerCommand shell(const std::string& script) {
  return {{"sh", "-c", script}, {}};
}

// Collects what the workers print into a temporary file.
class CapturedOutput {
 public:
  CapturedOutput() : file_(std::tmpfile()) {}
  ~CapturedOutput() { std::fclose(file_); }
  int fd() const { return fileno(file_); }
  std::string text() const {
    std::string all;
    char buffer[4096];
    ssize_t n = 0;
    off_t offset = 0;
    while ((n = ::pread(fd(), buffer, sizeof buffer, offset)) > 0) {
      all.append(buffer, static_cast<size_t>(n));
      offset += n;
    }
    return all;
  }

 private:
  std::FILE* file_;
};

TEST(LocalLauncherTest, RunsEveryWorkerWithItsEnvironmentAndPrefixesItsLines) {
  CapturedOutput out;
  LaunchOptions options;
  options.stdout_fd = out.fd();
  std::vector<WorkerCommand> workers = {shell("echo hello $RANK; printf 'no newline'"),
                                        shell("echo hello $RANK")};
  workers[0].env = {{"RANK", "0"}};
  workers[1].env = {{"RANK", "1"}};
  const LaunchResult result = launch_workers(workers, options);
  EXPECT_TRUE(result.ok()) << result.failure;
  EXPECT_EQ(result.exit_code(), 0);
  const std::string text = out.text();
  EXPECT_NE(text.find("[rank 0] hello 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("[rank 0] no newline\n"), std::string::npos) << text;
  EXPECT_NE(text.find("[rank 1] hello 1\n"), std::string::npos) << text;
}

TEST(LocalLauncherTest, NotLiveTheWorkersGetNoRecordRequestAndLinesPassAsBefore) {
  CapturedOutput out;
  LaunchOptions options;
  options.stdout_fd = out.fd();
  const LaunchResult result =
      launch_workers({shell("echo \"live=${TESSERA_LIVE_PROGRESS:-unset}\"")}, options);
  EXPECT_TRUE(result.ok()) << result.failure;
  EXPECT_EQ(out.text(), "[rank 0] live=unset\n");
}

// Live: the workers are asked for records, the launcher draws one line per worker from them
// (redrawn in place with cursor movements) and prints every other line above the lines.
TEST(LocalLauncherTest, LiveProgressDrawsOneLinePerWorkerFromTheirRecords) {
  CapturedOutput out;
  LaunchOptions options;
  options.stdout_fd = out.fd();
  options.stderr_fd = out.fd();
  options.live_progress = true;
  options.live_width = 120;
  const std::string record =
      R"(@tessera-progress {"epoch":1,"epochs":2,"step":5,"steps":10,"loss":0.5,)"
      R"("samples_per_second":100,"elapsed":5})";
  const LaunchResult result = launch_workers(
      {shell("echo \"live=$TESSERA_LIVE_PROGRESS\"; echo '" + record + "' >&2; sleep 0.3"),
       shell("sleep 0.2; echo 'epoch 1: done' >&2")},
      options);
  EXPECT_TRUE(result.ok()) << result.failure;
  const std::string text = out.text();
  EXPECT_NE(text.find("[rank 0] live=1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("[rank 1] epoch 1: done\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("@tessera-progress"), std::string::npos) << "records are not printed";
  // The last board: both workers done, rank 0 with its record's progress.
  const std::string last = text.substr(text.rfind("\x1b[J") + 3);
  EXPECT_EQ(last,
            "[rank 0] epoch 1/2 [#####.....] step 5/10 loss 0.5000 100 samples/s ETA 5s | done"
            "\x1b[K\n[rank 1] starting | done\x1b[K\n");
  EXPECT_NE(text.find("\x1b[2F"), std::string::npos) << "redrawn from two lines up";
}

TEST(LocalLauncherTest, AFailedWorkerStopsTheOthersAndIsNamed) {
  CapturedOutput err;
  LaunchOptions options;
  options.stderr_fd = err.fd();
  options.grace_seconds = 1.0;
  metrics::Timer timer;
  const LaunchResult result =
      launch_workers({shell("sleep 60"), shell("sleep 0.2; exit 3"), shell("sleep 60")}, options);
  EXPECT_LT(timer.seconds(), 20.0);
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.failed_rank, 1);
  EXPECT_EQ(result.exit_code(), 3);
  EXPECT_EQ(result.failure, "rank 1 exited with status 3");
  EXPECT_TRUE(result.workers[0].stopped_by_launcher);
  EXPECT_TRUE(result.workers[2].stopped_by_launcher);
  EXPECT_FALSE(result.workers[1].stopped_by_launcher);
}

TEST(LocalLauncherTest, AWorkerKilledBySignalIsReportedWithTheSignal) {
  LaunchOptions options;
  options.grace_seconds = 1.0;
  const LaunchResult result = launch_workers({shell("sleep 60"), shell("kill -9 $$")}, options);
  EXPECT_EQ(result.failed_rank, 1);
  EXPECT_EQ(result.workers[1].signal, 9);
  EXPECT_EQ(result.exit_code(), 128 + 9);
  EXPECT_NE(result.failure.find("signal 9"), std::string::npos) << result.failure;
}

TEST(LocalLauncherTest, AWorkerIgnoringSigtermIsKilledAfterTheGracePeriod) {
  LaunchOptions options;
  options.grace_seconds = 0.5;
  // Rank 1 fails only once rank 0 ignores SIGTERM (otherwise the stop could come first).
  const std::string ready =
      std::filesystem::temp_directory_path() / ("tessera_trap_ready_" + std::to_string(getpid()));
  std::filesystem::remove(ready);
  metrics::Timer timer;
  const LaunchResult result =
      launch_workers({shell("trap '' TERM; touch " + ready + "; sleep 60"),
                      shell("while [ ! -e " + ready + " ]; do sleep 0.01; done; exit 1")},
                     options);
  std::filesystem::remove(ready);
  EXPECT_LT(timer.seconds(), 20.0);
  EXPECT_EQ(result.failed_rank, 1);
  EXPECT_EQ(result.workers[0].signal, 9);
}

TEST(LocalLauncherTest, AProgramThatDoesNotExistIsAClearError) {
  try {
    launch_workers({shell("sleep 60"), {{"/nonexistent/tessera-worker"}, {}}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tessera-worker"), std::string::npos);
  }
  EXPECT_THROW(launch_workers({}), UsageError);
}

TEST(LocalLauncherTest, CurrentExecutableStartsThisVeryBinary) {
  const std::string self = current_executable();
  CapturedOutput out;
  LaunchOptions options;
  options.stdout_fd = out.fd();
  // This test binary lists its own tests: proof that the path starts the same program.
  const LaunchResult result = launch_workers({{{self, "--gtest_list_tests"}, {}}}, options);
  EXPECT_TRUE(result.ok()) << result.failure;
  EXPECT_NE(out.text().find("CurrentExecutableStartsThisVeryBinary"), std::string::npos);
}

}  // namespace
}  // namespace tessera::dist
