// Abseil's Mutex deadlock detection, which the Abseil that Debian ships has on.
#pragma once

namespace probity::common {

// Debian builds Abseil without NDEBUG, so every absl::Mutex (gRPC's locks are absl::Mutex)
// runs its debug-mode deadlock detector: each acquisition takes one process-wide spin lock to
// update a lock graph, and one taken while another is held also records a stack trace. Two
// threads locking two of their own mutexes, nested, take about 400 ns per pair with it and
// 13 ns without (measured on Debian 12's libabsl 20220623), and every thread of a busy server
// queues on that one spin lock. Processes that serve (the probity binary, the benchmarks that
// run the service) turn it off first thing; tests keep it, as the debugging aid it is.
void TurnOffAbseilDeadlockDetection();

// Turns it back on (Abseil's debug-build default: abort on a lock cycle), for a benchmark that
// measures what it costs.
void TurnOnAbseilDeadlockDetection();

}  // namespace probity::common
