#include "tessera/core/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "tessera/core/error.h"

namespace tessera {
namespace {

std::string reason() {
  return std::strerror(errno);
}

// Writes all of `size` bytes at the descriptor's position; false (errno set) on failure.
bool write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = ENOSPC;
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

std::string directory_of(const std::string& path) {
  const std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

// fsyncs a directory so that a rename in it survives a crash. Some file systems refuse fsync on
// a directory (EINVAL): nothing to make durable there.
void sync_directory(const std::string& directory) {
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) throw Error("cannot open directory " + directory + " to sync it: " + reason());
  const bool failed = ::fsync(fd) != 0 && errno != EINVAL;
  const std::string why = failed ? reason() : "";
  ::close(fd);
  if (failed) throw Error("cannot sync directory " + directory + ": " + why);
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), temporary_(path_ + ".tmp") {
  fd_ = ::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw Error("cannot write " + path_ + ": cannot create " + temporary_ + ": " + reason());
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temporary_.c_str());
}

bool AtomicFile::write(const void* data, size_t size) {
  if (!failure_.empty()) return false;
  if (write_all(fd_, static_cast<const char*>(data), size)) return true;
  failure_ = "cannot write " + path_ + ": " + reason();
  return false;
}

void AtomicFile::commit() {
  if (!failure_.empty()) throw Error(failure_);
  // A file system that allocates lazily may accept the writes and fail only here.
  if (::fsync(fd_) != 0)
    throw Error("cannot write " + path_ + ": flushing it to disk failed: " + reason());
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw Error("cannot write " + path_ + ": closing it failed: " + reason());
  if (std::rename(temporary_.c_str(), path_.c_str()) != 0)
    throw Error("cannot move " + temporary_ + " to " + path_ + ": " + reason());
  committed_ = true;
  sync_directory(directory_of(path_));
}

void write_file_atomically(const std::string& path, const std::string& contents) {
  AtomicFile file(path);
  file.write(contents.data(), contents.size());
  file.commit();
}

AppendFile::AppendFile(const std::string& path, bool append) : path_(path) {
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
  fd_ = ::open(path.c_str(), flags, 0644);
  if (fd_ < 0) throw Error("cannot open " + path + " for writing: " + reason());
  try {
    drop_torn_last_line(append);
  } catch (const Error&) {
    ::close(fd_);
    throw;
  }
}

void AppendFile::drop_torn_last_line(bool append) {
  const std::string& path = path_;
  struct stat info {};
  if (::fstat(fd_, &info) != 0) throw Error("cannot read the size of " + path + ": " + reason());
  size_ = info.st_size;
  if (!append || size_ == 0) return;
  // Keep the complete lines only: find the last newline from the end.
  const int reader = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (reader < 0) throw Error("cannot read " + path + ": " + reason());
  int64_t end = size_;
  std::vector<char> block(4096);
  bool found = false;
  while (end > 0 && !found) {
    const int64_t start = std::max<int64_t>(0, end - static_cast<int64_t>(block.size()));
    const ssize_t n = ::pread(reader, block.data(), static_cast<size_t>(end - start), start);
    if (n != end - start) {
      const std::string why = n < 0 ? reason() : "it shrank while being read";
      ::close(reader);
      throw Error("cannot read " + path + ": " + why);
    }
    for (int64_t i = end - start - 1; i >= 0 && !found; --i)
      if (block[static_cast<size_t>(i)] == '\n') {
        end = start + i + 1;
        found = true;
      }
    if (!found) end = start;
  }
  ::close(reader);
  if (end != size_) {
    if (::ftruncate(fd_, end) != 0)
      throw Error("cannot drop the torn last line of " + path + ": " + reason());
    size_ = end;
  }
}

AppendFile::~AppendFile() {
  if (fd_ >= 0) ::close(fd_);
}

void AppendFile::write(const std::string& record) {
  if (write_all(fd_, record.data(), record.size())) {
    size_ += static_cast<int64_t>(record.size());
    return;
  }
  const std::string why = reason();
  // Cut off whatever part of the record made it, so the file ends with a complete record.
  if (::ftruncate(fd_, size_) != 0) {
    throw Error("cannot write to " + path_ + ": " + why +
                "; cutting off the partial record failed too: " + reason());
  }
  throw Error("cannot write to " + path_ + ": " + why);
}

}  // namespace tessera
