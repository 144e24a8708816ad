// Turning Abseil's Mutex deadlock detection off and on (common/abseil_deadlock_detection.h).
// The detector aborts the process when two mutexes are locked in both orders, even by one
// thread, so whether that aborts tells whether it runs. Debian's Abseil has it on by default.
#include "probity/common/abseil_deadlock_detection.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "absl/synchronization/mutex.h"

namespace probity::common {
namespace {

void LockTwoMutexesInBothOrders() {
  absl::Mutex first;
  absl::Mutex second;
  {
    absl::MutexLock a(&first);
    absl::MutexLock b(&second);
  }
  {
    absl::MutexLock b(&second);
    absl::MutexLock a(&first);
  }
}

TEST(AbseilDeadlockDetectionTest, OnALockOrderCycleEndsTheProcess) {
  EXPECT_DEATH(
      {
        TurnOnAbseilDeadlockDetection();
        LockTwoMutexesInBothOrders();
      },
      "deadlock");
}

TEST(AbseilDeadlockDetectionTest, OffTheSameLockOrderIsNotChecked) {
  EXPECT_EXIT(
      {
        TurnOnAbseilDeadlockDetection();
        TurnOffAbseilDeadlockDetection();
        LockTwoMutexesInBothOrders();
        std::exit(0);
      },
      testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace probity::common
