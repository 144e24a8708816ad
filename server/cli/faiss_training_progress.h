#pragma once

// The CLI's progress display while FAISS trains (`probity build` and `probity train`). FAISS
// 1.7.3 has no training callback, so this scrapes its verbose log from stdout; that is terminal
// plumbing (pipes, dup2, a reader thread), which is why it lives here, apart from the commands
// and outside the index library.

#include <chrono>
#include <cstdint>
#include <memory>

namespace probity::cli {

class FaissTrainingProgress;

// The CLI's side of training: FAISS's log as a progress line, then how long training took.
class TrainingScope {
 public:
  explicit TrainingScope(int64_t sample_rows);
  ~TrainingScope();
  TrainingScope(const TrainingScope&) = delete;
  TrainingScope& operator=(const TrainingScope&) = delete;

 private:
  int64_t sample_rows_;
  std::chrono::steady_clock::time_point start_;
  std::unique_ptr<FaissTrainingProgress> progress_;
};

}  // namespace probity::cli
