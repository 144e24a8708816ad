#pragma once

// Holds calls inside a fake until the test opens it, so that a test can have exactly N calls
// running at once without sleeping, then let them all finish.

#include <condition_variable>
#include <mutex>

namespace probity::test_support {

class HeldCalls {
 public:
  // Called by each held call: counts it, then waits until Open().
  void EnterAndWait() {
    std::unique_lock lock(mutex_);
    ++entered_;
    changed_.notify_all();
    changed_.wait(lock, [this] { return open_; });
  }
  void WaitForEntered(int calls) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return entered_ >= calls; });
  }
  void Open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  // Holds the next calls again, counting from zero.
  void Close() {
    std::lock_guard lock(mutex_);
    open_ = false;
    entered_ = 0;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int entered_ = 0;
  bool open_ = false;
};

}  // namespace probity::test_support
