#pragma once

// A std::terminate handler that says why a process ended. CUDA's Thrust reports a CUDA error met
// in a destructor with printf and then calls std::terminate itself: with stdout a pipe or a file
// (a container's log, CTest, a GPU machine's log) the message stayed in stdout's buffer and was
// lost with the abort, and all that was left was "terminate called without an active
// exception". The handler flushes stdout, prints the stack to stderr, then runs the handler it
// replaced (libstdc++'s names the active exception and its message) and aborts.

namespace probity::common {

// Installs the handler for the whole process; call it first thing in main().
void InstallTerminateReport();

}  // namespace probity::common
