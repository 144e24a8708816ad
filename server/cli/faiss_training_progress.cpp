// The scraper behind TrainingScope (see the header for why it is a file of its own).
#include "faiss_training_progress.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

#include "absl/strings/str_format.h"
#include "probity/index/progress.h"
#include "probity/index/status_line.h"

namespace probity::cli {

using index::ProgressBar;
using index::StatusLine;

// FAISS 1.7.3 has no training callback, but its verbose log names every k-means iteration and
// every PQ slice. While training runs, stdout is redirected into a pipe and that log becomes a
// progress line on stderr: the current phase, iterations per second, and the time left for the
// phase (PQ slices all cost the same, so their ETA covers the whole codebook training).
class FaissTrainingProgress {
 public:
  FaissTrainingProgress() {
    std::fflush(stdout);
    int fds[2];
    if (::pipe(fds) != 0) return;
    saved_stdout_ = ::dup(STDOUT_FILENO);
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[1]);
    read_end_ = fds[0];
    start_ = phase_start_ = clustering_start_ = std::chrono::steady_clock::now();
    reader_ = std::thread([this] { Read(); });
  }
  ~FaissTrainingProgress() {
    if (saved_stdout_ < 0) return;
    std::fflush(stdout);
    ::dup2(saved_stdout_, STDOUT_FILENO);  // closes the pipe's last write end: reader sees EOF
    ::close(saved_stdout_);
    reader_.join();
    ::close(read_end_);
  }
  FaissTrainingProgress(const FaissTrainingProgress&) = delete;
  FaissTrainingProgress& operator=(const FaissTrainingProgress&) = delete;

 private:
  void Read() {
    std::string line;
    char buffer[4096];
    for (ssize_t got; (got = ::read(read_end_, buffer, sizeof(buffer))) > 0;) {
      for (ssize_t i = 0; i < got; ++i) {
        if (buffer[i] == '\n' || buffer[i] == '\r') {
          Parse(line);
          line.clear();
        } else {
          line += buffer[i];
        }
      }
    }
    if (!shown_.empty()) status_.End(shown_);
  }

  void Parse(const std::string& line) {
    const auto now = std::chrono::steady_clock::now();
    int a = 0, b = 0;
    long long points = 0;
    if (line.find("Training level-1 quantizer") != std::string::npos) {
      phase_ = "coarse quantizer k-means";
      slice_ = slices_ = 0;
      phase_start_ = now;
    } else if (std::sscanf(line.c_str(), "Training PQ slice %d/%d", &a, &b) == 2) {
      if (slices_ == 0) phase_start_ = now;
      phase_ = "PQ codebooks";
      slice_ = a;
      slices_ = b;
    } else if (std::sscanf(line.c_str(), "Clustering %lld points in %dD to %d clusters", &points,
                           &a, &b) == 3) {
      iterations_ = 0;
      const size_t at = line.find(" times, ");
      if (at != std::string::npos) iterations_ = std::atoi(line.c_str() + at + 8);
      iteration_ = 0;
      clustering_start_ = now;
    } else if (std::sscanf(line.c_str(), "  Iteration %d", &a) == 1) {
      iteration_ = a + 1;
      ++total_iterations_;
    } else {
      return;
    }
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = total_iterations_ / std::max(elapsed, 1e-9);
    double left = -1;
    if (slices_ > 0 && iterations_ > 0) {
      const double done = slice_ + static_cast<double>(iteration_) / iterations_;
      const double phase = std::chrono::duration<double>(now - phase_start_).count();
      if (done > 0) left = phase / done * (slices_ - done);
    } else if (iterations_ > 0 && iteration_ > 0) {
      const double clustering = std::chrono::duration<double>(now - clustering_start_).count();
      left = clustering / iteration_ * (iterations_ - iteration_);
    }
    std::string where = phase_.empty() ? std::string("preparing") : phase_;
    if (slices_ > 0) where += absl::StrFormat(" slice %d/%d", slice_ + 1, slices_);
    if (iterations_ > 0) where += absl::StrFormat(" iteration %d/%d", iteration_, iterations_);
    shown_ = absl::StrFormat("training: %s, %.1f k-means iterations/s, elapsed %s, ETA %s", where,
                             rate, ProgressBar::FormatDuration(elapsed),
                             left < 0 ? std::string("--:--") : ProgressBar::FormatDuration(left));
    status_.Show(shown_);
  }

  int saved_stdout_ = -1;
  int read_end_ = -1;
  std::thread reader_;
  std::string phase_;
  int slice_ = 0, slices_ = 0, iteration_ = 0, iterations_ = 0;
  int64_t total_iterations_ = 0;
  std::chrono::steady_clock::time_point start_, phase_start_, clustering_start_;
  StatusLine status_{std::cerr};
  std::string shown_;  // the latest status, shown or not
};

TrainingScope::TrainingScope(int64_t sample_rows)
    : sample_rows_(sample_rows), start_(std::chrono::steady_clock::now()) {
  std::cerr << "training on " << sample_rows << " vectors\n";
  progress_ = std::make_unique<FaissTrainingProgress>();
}

TrainingScope::~TrainingScope() {
  progress_.reset();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::cerr << absl::StrFormat("trained on %d vectors in %s (%.0f vectors/s)\n", sample_rows_,
                               ProgressBar::FormatDuration(seconds),
                               sample_rows_ / std::max(seconds, 1e-9));
}

}  // namespace probity::cli
