#include "tessera/dist/local_launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <map>
#include <memory>

#include "tessera/core/error.h"
#include "tessera/dist/live_progress.h"
#include "tessera/metrics/timer.h"

extern char** environ;

namespace tessera::dist {
namespace {

constexpr int kPollMilliseconds = 100;
// After every worker has exited, how long to wait for output still held by their children.
constexpr double kDrainSeconds = 1.0;

volatile std::sig_atomic_t g_interrupt_signal = 0;
void remember_signal(int signal) {
  g_interrupt_signal = signal;
}

// Passes SIGINT / SIGTERM on to the workers instead of dying with them still running.
class SignalForwarding {
 public:
  SignalForwarding() {
    g_interrupt_signal = 0;
    struct sigaction action {};
    action.sa_handler = remember_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~SignalForwarding() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  SignalForwarding(const SignalForwarding&) = delete;
  SignalForwarding& operator=(const SignalForwarding&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

std::vector<std::string> environment_with(
    const std::vector<std::pair<std::string, std::string>>& overrides) {
  std::map<std::string, std::string> values;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string text = *entry;
    const size_t eq = text.find('=');
    if (eq != std::string::npos) values[text.substr(0, eq)] = text.substr(eq + 1);
  }
  for (const auto& [key, value] : overrides) values[key] = value;
  std::vector<std::string> env;
  for (const auto& [key, value] : values) env.push_back(key + "=" + value);
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (auto& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

// One stream of one worker: bytes are cut into lines and written with the rank in front (or, with
// a live display, handed to it).
struct OutputStream {
  int fd = -1;
  int target_fd = 1;
  std::string prefix;
  std::string pending;  // an incomplete last line
  LiveProgress* live = nullptr;
  size_t worker = 0;

  void write_all(const std::string& text) const {
    size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(target_fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // the launcher's own output is gone: nothing sensible to do
      done += static_cast<size_t>(n);
    }
  }
  // One line, without its newline.
  void emit(const std::string& line) const {
    if (live != nullptr)
      live->worker_line(worker, line, target_fd, prefix);
    else
      write_all(prefix + line + "\n");
  }

  // Reads what is available; returns false at end of stream.
  bool pump() {
    char buffer[4096];
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) return errno == EINTR || errno == EAGAIN;
    if (n == 0) {
      close();
      return false;
    }
    pending.append(buffer, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t i = 0; i < pending.size(); ++i) {
      // A progress bar redraws with '\r'; give each redraw its own prefixed line.
      if (pending[i] == '\n' || pending[i] == '\r') {
        if (i > start) emit(pending.substr(start, i - start));
        start = i + 1;
      }
    }
    pending.erase(0, start);
    return true;
  }
  void close() {
    if (!pending.empty()) emit(pending);
    pending.clear();
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

struct Worker {
  pid_t pid = -1;
  bool running = false;
  WorkerExit exit;
  OutputStream out;
  OutputStream err;
};

std::string describe_exit(const std::string& who, const WorkerExit& exit) {
  if (exit.signal != 0)
    return who + " was killed by signal " + std::to_string(exit.signal) + " (" +
           strsignal(exit.signal) + ")";
  return who + " exited with status " + std::to_string(exit.exit_code);
}

void open_pipe(int fds[2]) {
  if (pipe2(fds, O_CLOEXEC) != 0)
    throw Error(std::string("launch: cannot create a pipe: ") + std::strerror(errno));
}

void spawn(Worker& worker, const WorkerCommand& command, const LaunchOptions& options, int rank,
           LiveProgress* live) {
  if (command.argv.empty())
    throw UsageError("launch: worker " + std::to_string(rank) + " has no command");
  int out[2];
  int err[2];
  open_pipe(out);
  open_pipe(err);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  // Its own process group, so stopping a worker also stops whatever it started; default
  // signal handling and an empty mask whatever this process has set up.
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGPIPE);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setsigmask(&attributes, &empty);
  posix_spawnattr_setpgroup(&attributes, 0);
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  std::vector<std::string> argv = command.argv;
  auto overrides = command.env;
  if (live != nullptr) overrides.emplace_back(metrics::kLiveProgressEnv, "1");
  std::vector<std::string> env = environment_with(overrides);
  std::vector<char*> c_argv = c_strings(argv);
  std::vector<char*> c_env = c_strings(env);
  const int status =
      posix_spawnp(&worker.pid, c_argv[0], &actions, &attributes, c_argv.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  ::close(out[1]);
  ::close(err[1]);
  if (status != 0) {
    ::close(out[0]);
    ::close(err[0]);
    throw Error("launch: cannot start " + options.label + " " + std::to_string(rank) + " ('" +
                command.argv[0] + "'): " + std::strerror(status));
  }
  const std::string prefix =
      options.prefix_output ? "[" + options.label + " " + std::to_string(rank) + "] " : "";
  worker.running = true;
  const auto worker_index = static_cast<size_t>(rank);
  worker.out = OutputStream{out[0], options.stdout_fd, prefix, {}, live, worker_index};
  worker.err = OutputStream{err[0], options.stderr_fd, prefix, {}, live, worker_index};
}

class Supervisor {
 public:
  Supervisor(std::vector<Worker>& workers, const LaunchOptions& options, LiveProgress* live)
      : workers_(workers), options_(options), live_(live) {}

  void stop_all(int signal) {
    for (auto& worker : workers_) {
      if (!worker.running) continue;
      worker.exit.stopped_by_launcher = true;
      ::kill(-worker.pid, signal);
    }
  }

  // Stops the running workers (SIGTERM now, SIGKILL after the grace period).
  void begin_stopping() {
    if (stopping_) return;
    stopping_ = true;
    stop_all(SIGTERM);
    stop_timer_.restart();
  }

  void reap(LaunchResult& result) {
    for (size_t rank = 0; rank < workers_.size(); ++rank) {
      Worker& worker = workers_[rank];
      if (!worker.running) continue;
      int status = 0;
      const pid_t pid = ::waitpid(worker.pid, &status, WNOHANG);
      if (pid != worker.pid) continue;
      worker.running = false;
      if (WIFSIGNALED(status)) worker.exit.signal = WTERMSIG(status);
      if (WIFEXITED(status)) worker.exit.exit_code = WEXITSTATUS(status);
      const bool failed = worker.exit.signal != 0 || worker.exit.exit_code != 0;
      if (live_ != nullptr)
        live_->worker_exited(rank, failed ? describe_exit("", worker.exit).substr(1) : "done");
      if (failed && result.failure.empty() && !worker.exit.stopped_by_launcher) {
        result.failed_rank = static_cast<int>(rank);
        result.failure = describe_exit(options_.label + " " + std::to_string(rank), worker.exit);
        begin_stopping();
      }
    }
  }

  void run(LaunchResult& result) {
    metrics::Timer drain_timer;
    bool draining = false;
    while (true) {
      if (g_interrupt_signal != 0) {
        if (result.failure.empty())
          result.failure = "interrupted by signal " + std::to_string(g_interrupt_signal);
        g_interrupt_signal = 0;
        begin_stopping();
      }
      if (stopping_ && stop_timer_.seconds() > options_.grace_seconds) stop_all(SIGKILL);
      pump_output();
      reap(result);
      if (any_running()) continue;
      if (!draining) {
        draining = true;
        drain_timer.restart();
      }
      if (!any_open() || drain_timer.seconds() > kDrainSeconds) break;
    }
    for (auto& worker : workers_) {
      worker.out.close();
      worker.err.close();
    }
  }

 private:
  bool any_running() const {
    for (const auto& worker : workers_)
      if (worker.running) return true;
    return false;
  }
  bool any_open() const {
    for (const auto& worker : workers_)
      if (worker.out.fd >= 0 || worker.err.fd >= 0) return true;
    return false;
  }

  void pump_output() {
    std::vector<pollfd> fds;
    std::vector<OutputStream*> streams;
    for (auto& worker : workers_) {
      for (OutputStream* stream : {&worker.out, &worker.err}) {
        if (stream->fd < 0) continue;
        fds.push_back(pollfd{stream->fd, POLLIN, 0});
        streams.push_back(stream);
      }
    }
    if (fds.empty()) {
      ::usleep(kPollMilliseconds * 1000);
      return;
    }
    if (::poll(fds.data(), fds.size(), kPollMilliseconds) <= 0) return;
    for (size_t i = 0; i < fds.size(); ++i)
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) streams[i]->pump();
  }

  std::vector<Worker>& workers_;
  const LaunchOptions& options_;
  LiveProgress* live_;
  bool stopping_ = false;
  metrics::Timer stop_timer_;
};

}  // namespace

int LaunchResult::exit_code() const {
  if (ok()) return 0;
  if (failed_rank < 0) return 1;
  const WorkerExit& exit = workers[static_cast<size_t>(failed_rank)];
  return exit.signal != 0 ? 128 + exit.signal : exit.exit_code;
}

LaunchResult launch_workers(const std::vector<WorkerCommand>& commands,
                            const LaunchOptions& options) {
  require(!commands.empty(), "launch: no workers to start");
  require(options.grace_seconds >= 0, "launch: the grace period must be non-negative");
  SignalForwarding forwarding;
  std::vector<Worker> workers(commands.size());
  std::unique_ptr<LiveProgress> live;
  if (options.live_progress) {
    std::vector<std::string> labels;
    for (size_t rank = 0; rank < commands.size(); ++rank)
      labels.push_back(options.label + " " + std::to_string(rank));
    live = std::make_unique<LiveProgress>(options.stderr_fd, labels, options.live_width);
  }
  Supervisor supervisor(workers, options, live.get());
  LaunchResult result;
  try {
    for (size_t rank = 0; rank < commands.size(); ++rank)
      spawn(workers[rank], commands[rank], options, static_cast<int>(rank), live.get());
  } catch (...) {
    supervisor.stop_all(SIGKILL);
    supervisor.run(result);
    throw;
  }
  supervisor.run(result);
  for (const auto& worker : workers) result.workers.push_back(worker.exit);
  return result;
}

std::string current_executable() {
  // /proc/<pid>/exe rather than the path it links to: it still starts this very binary after a
  // rebuild has replaced (unlinked) the file, where the path would start another version or fail.
  const std::string link = "/proc/" + std::to_string(::getpid()) + "/exe";
  if (::access(link.c_str(), X_OK) != 0)
    throw Error("cannot find the running executable (" + link + ")");
  return link;
}

}  // namespace tessera::dist
