#include "probity/common/abseil_deadlock_detection.h"

#include "absl/synchronization/mutex.h"

namespace probity::common {

void TurnOffAbseilDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

void TurnOnAbseilDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kAbort);
}

}  // namespace probity::common
