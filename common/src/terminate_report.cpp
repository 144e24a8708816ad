#include "probity/common/terminate_report.h"

#include <execinfo.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

namespace probity::common {
namespace {

std::terminate_handler replaced_handler = nullptr;

[[noreturn]] void ReportTerminate() {
  std::fflush(stdout);
  void* frames[64];
  const int depth = backtrace(frames, 64);
  std::fputs("std::terminate was called; the stack (addr2line resolves the offsets):\n", stderr);
  backtrace_symbols_fd(frames, depth, fileno(stderr));
  if (replaced_handler != nullptr) replaced_handler();
  std::abort();
}

}  // namespace

void InstallTerminateReport() {
  const std::terminate_handler previous = std::set_terminate(ReportTerminate);
  if (previous != ReportTerminate) replaced_handler = previous;
}

}  // namespace probity::common
