// Writing files so that a full disk, a read-only file system or a killed process never leaves a
// half-written file where a good one was. Every write, fsync and close result is checked (on a
// file system that allocates lazily a write may succeed into the page cache and the error appear
// only at fsync or close), and every error names the path and the system's reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tessera {

// A file written whole or not at all: the bytes go to "<path>.tmp", which commit() fsyncs, closes
// and renames over `path` (then fsyncs the directory). Until then `path` is untouched; a write that
// fails (full disk, I/O error) is remembered, and the destructor of an uncommitted file removes the
// temporary.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // throws tessera::Error naming the path
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  // Appends `size` bytes; false if they could not all be written (failure() says why).
  bool write(const void* data, size_t size);
  // "cannot write PATH: REASON" after a failed write(); empty before.
  const std::string& failure() const { return failure_; }
  // Throws tessera::Error naming the path after a failed write, or if fsync, close or rename fail.
  void commit();

 private:
  std::string path_;
  std::string temporary_;
  int fd_ = -1;
  std::string failure_;
  bool committed_ = false;
};

// `contents` into `path` through an AtomicFile.
void write_file_atomically(const std::string& path, const std::string& contents);

// A file that records are appended to, one write() per record. A record that cannot be written
// whole (ENOSPC, EIO, ...) is cut off again, so the file keeps only complete records, and the
// error names the path. Opening for append first drops a torn last line (a record a crash cut
// short), so that the records appended next start on a line of their own.
class AppendFile {
 public:
  AppendFile(const std::string& path, bool append);  // throws tessera::Error naming the path
  ~AppendFile();
  AppendFile(const AppendFile&) = delete;
  AppendFile& operator=(const AppendFile&) = delete;
  void write(const std::string& record);
  const std::string& path() const { return path_; }

 private:
  void drop_torn_last_line(bool append);

  std::string path_;
  int fd_ = -1;
  int64_t size_ = 0;  // bytes of complete records
};

}  // namespace tessera
