#pragma once

// Sets the process umask for one scope (and for the processes started within it), then puts
// the previous one back: for tests that check a file's mode does not depend on the umask.

#include <sys/stat.h>

namespace probity::test_support {

class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : previous_(::umask(mask)) {}
  ~ScopedUmask() { ::umask(previous_); }
  ScopedUmask(const ScopedUmask&) = delete;
  ScopedUmask& operator=(const ScopedUmask&) = delete;

 private:
  mode_t previous_;
};

}  // namespace probity::test_support
