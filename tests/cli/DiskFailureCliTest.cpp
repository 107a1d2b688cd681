// A run directory on a small tmpfs that fills up, or on a read-only mount: the run fails with an
// error naming the path, the last good checkpoint and metrics survive whole, and --resume with
// space again continues. Mounting needs root (CI runs as root); elsewhere the tests skip, saying
// why. Every mount is undone by its guard, whatever the test's outcome.
#include <gtest/gtest.h>

#include <sys/mount.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "../command_output.h"
#include "../test_support.h"

namespace disk_failure_test {

// A tmpfs of `size` bytes mounted at `path` for the guard's lifetime.
class TmpfsMount {
 public:
  TmpfsMount(std::string path, int64_t size) : path_(std::move(path)) {
    std::filesystem::create_directories(path_);
    const std::string options = "size=" + std::to_string(size);
    if (::mount("tessera-test", path_.c_str(), "tmpfs", 0, options.c_str()) == 0)
      mounted_ = true;
    else
      error_ = std::strerror(errno);
  }
  ~TmpfsMount() {
    if (mounted_ && ::umount2(path_.c_str(), MNT_DETACH) != 0)
      ADD_FAILURE() << "cannot unmount " << path_ << ": " << std::strerror(errno);
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  // Remounts read-only (true) or writable again; false with the reason in error() otherwise.
  bool set_read_only(bool read_only) {
    const unsigned long flags = MS_REMOUNT | (read_only ? MS_RDONLY : 0);
    if (::mount("tessera-test", path_.c_str(), "tmpfs", flags, nullptr) == 0) return true;
    error_ = std::strerror(errno);
    return false;
  }

 private:
  std::string path_;
  bool mounted_ = false;
  std::string error_;
};

#define TESSERA_MOUNT_OR_SKIP(mount) \
  if (!(mount).mounted())            \
  GTEST_SKIP() << "cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): " << (mount).error()

int64_t free_bytes(const std::string& path) {
  struct statvfs info {};
  if (::statvfs(path.c_str(), &info) != 0) return -1;
  return static_cast<int64_t>(info.f_bavail) * static_cast<int64_t>(info.f_frsize);
}

// Fills the file system of `dir` until `keep` bytes are left, with the file `dir`/filler.
void fill_leaving(const std::string& dir, int64_t keep) {
  const int64_t fill = free_bytes(dir) - keep;
  ASSERT_GT(fill, 0);
  std::ofstream out(dir + "/filler", std::ios::binary);
  const std::string block(4096, '\0');
  for (int64_t written = 0; written < fill; written += 4096) out.write(block.data(), 4096);
  out.flush();
  ASSERT_TRUE(out) << "the filler did not fit";
}

// Every line of metrics.jsonl is a whole record; returns the epochs of the epoch records.
std::vector<int64_t> epoch_records(const std::string& path) {
  std::vector<int64_t> epochs;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    const auto record = nlohmann::json::parse(line, nullptr, false);
    EXPECT_FALSE(record.is_discarded()) << "a torn record in " << path << ": " << line;
    if (!record.is_discarded() && record["type"] == "epoch")
      epochs.push_back(record["epoch"].get<int64_t>());
  }
  return epochs;
}

tessera::testing::CommandResult tessera_run(const std::string& args) {
  return tessera::testing::run_command(std::string(TESSERA_BINARY) + " " + args + " 2>&1");
}

// A checkpoint of about 60 KiB (Adam's state doubles the weights'), a few KiB of everything else.
const std::string kRun =
    "train --data synthetic --synthetic-train 512 --synthetic-test 128 --synthetic-shape 1,8,8 "
    "--hidden 64,64 --batch-size 64 --threads 1 --quiet";

TEST(DiskFailureCli, AFullDiskAtTheCheckpointKeepsTheLastOneAndResumeContinues) {
  const std::string mount_point = tessera::testing::fresh_dir("cli_disk_full_checkpoint") + "/mnt";
  TmpfsMount mount(mount_point, 1 << 20);
  TESSERA_MOUNT_OR_SKIP(mount);
  const std::string dir = mount_point + "/run";
  auto r = tessera_run(kRun + " --epochs 1 --run-dir " + dir);
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string checkpoint = tessera::testing::file_contents(dir + "/checkpoint.pt");
  ASSERT_GT(checkpoint.size(), 32u << 10);
  // Room for config.json's rewrite and epoch 2's record, not for a second checkpoint.
  fill_leaving(mount_point, 12 << 10);

  r = tessera_run("train --run-dir " + dir + " --resume --epochs 2");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("cannot write checkpoint " + dir + "/checkpoint.pt"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("No space left on device"), std::string::npos) << r.output;
  EXPECT_EQ(tessera::testing::file_contents(dir + "/checkpoint.pt"), checkpoint);
  EXPECT_FALSE(std::filesystem::exists(dir + "/checkpoint.pt.tmp"));
  EXPECT_EQ(epoch_records(dir + "/metrics.jsonl"), (std::vector<int64_t>{1, 2}));

  std::filesystem::remove(mount_point + "/filler");
  r = tessera_run("train --run-dir " + dir + " --resume --epochs 2");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(tessera::testing::read_json(dir + "/summary.json")["epochs"], 2);
  // The failed run's record of epoch 2 was dropped on resume: epoch 2 appears once.
  EXPECT_EQ(epoch_records(dir + "/metrics.jsonl"), (std::vector<int64_t>{1, 2}));
}

TEST(DiskFailureCli, AFullDiskWhileLoggingKeepsWholeRecordsAndResumeContinues) {
  const std::string mount_point = tessera::testing::fresh_dir("cli_disk_full_metrics") + "/mnt";
  TmpfsMount mount(mount_point, 1 << 20);
  TESSERA_MOUNT_OR_SKIP(mount);
  const std::string dir = mount_point + "/run";
  // 64 steps an epoch, each logged: an epoch's records fill more than two 4 KiB pages.
  const std::string logged = kRun + " --batch-size 8 --log-every 1";
  auto r = tessera_run(logged + " --epochs 1 --run-dir " + dir);
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string checkpoint = tessera::testing::file_contents(dir + "/checkpoint.pt");
  // One page: config.json's rewrite borrows it and gives it back, the records then need more.
  fill_leaving(mount_point, 4 << 10);

  r = tessera_run("train --run-dir " + dir + " --resume --epochs 2");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("cannot write to " + dir + "/metrics.jsonl: No space left on device"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(tessera::testing::file_contents(dir + "/checkpoint.pt"), checkpoint);
  EXPECT_EQ(epoch_records(dir + "/metrics.jsonl"), (std::vector<int64_t>{1}));
  const std::string metrics = tessera::testing::file_contents(dir + "/metrics.jsonl");
  ASSERT_FALSE(metrics.empty());
  EXPECT_EQ(metrics.back(), '\n');

  std::filesystem::remove(mount_point + "/filler");
  r = tessera_run("train --run-dir " + dir + " --resume --epochs 2");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(tessera::testing::read_json(dir + "/summary.json")["epochs"], 2);
  EXPECT_EQ(epoch_records(dir + "/metrics.jsonl"), (std::vector<int64_t>{1, 2}));
  // Steps 65..128 logged once each: the failed run's were dropped on resume.
  std::ifstream in(dir + "/metrics.jsonl");
  std::vector<int64_t> steps;
  for (std::string line; std::getline(in, line);) {
    const auto record = nlohmann::json::parse(line);
    if (record["type"] == "step") steps.push_back(record["step"].get<int64_t>());
  }
  ASSERT_EQ(steps.size(), 128u);
  for (size_t i = 0; i < steps.size(); ++i) EXPECT_EQ(steps[i], static_cast<int64_t>(i) + 1);
}

TEST(DiskFailureCli, AReadOnlyRunDirectoryIsAClearErrorAndResumeContinuesOnceWritable) {
  const std::string mount_point = tessera::testing::fresh_dir("cli_disk_read_only") + "/mnt";
  TmpfsMount mount(mount_point, 1 << 20);
  TESSERA_MOUNT_OR_SKIP(mount);
  const std::string dir = mount_point + "/run";
  auto r = tessera_run(kRun + " --epochs 1 --run-dir " + dir);
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string checkpoint = tessera::testing::file_contents(dir + "/checkpoint.pt");
  const std::string metrics = tessera::testing::file_contents(dir + "/metrics.jsonl");
  ASSERT_TRUE(mount.set_read_only(true)) << mount.error();

  r = tessera_run("train --run-dir " + dir + " --resume --epochs 2");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find(dir + "/metrics.jsonl"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Read-only file system"), std::string::npos) << r.output;
  r = tessera_run(kRun + " --epochs 1 --run-dir " + mount_point + "/fresh");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("cannot create run directory " + mount_point + "/fresh"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(tessera::testing::file_contents(dir + "/checkpoint.pt"), checkpoint);
  EXPECT_EQ(tessera::testing::file_contents(dir + "/metrics.jsonl"), metrics);

  ASSERT_TRUE(mount.set_read_only(false)) << mount.error();
  r = tessera_run("train --run-dir " + dir + " --resume --epochs 2");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(tessera::testing::read_json(dir + "/summary.json")["epochs"], 2);
  EXPECT_EQ(epoch_records(dir + "/metrics.jsonl"), (std::vector<int64_t>{1, 2}));
}

}  // namespace disk_failure_test
