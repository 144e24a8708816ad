#include "probity/common/terminate_report.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <stdexcept>

namespace probity::common {
namespace {

// As CUDA's Thrust does on a CUDA error in a destructor: the reason goes to stdout with printf,
// then std::terminate is called with no exception active. stdout is pointed at stderr (which
// the death test reads), a pipe, so fully buffered: without the handler's flush the reason is
// lost with the abort.
[[noreturn]] void PrintThenTerminate() {
  InstallTerminateReport();
  std::fflush(stdout);
  dup2(fileno(stderr), fileno(stdout));
  std::printf("Error after cudaFree: an illegal memory access was encountered\n");
  std::terminate();
}

TEST(TerminateReportTest, KeepsWhatWasPrintedToStdoutAndPrintsTheStack) {
  EXPECT_DEATH(PrintThenTerminate(),
               "Error after cudaFree: an illegal memory access was encountered\n"
               "std::terminate was called; the stack");
}

TEST(TerminateReportTest, StillNamesTheExceptionThatEscaped) {
  EXPECT_DEATH(
      {
        InstallTerminateReport();
        InstallTerminateReport();  // twice: the second must not replace the first with itself
        try {
          throw std::runtime_error("the reason it ended");
        } catch (...) {
          std::terminate();
        }
      },
      "std::terminate was called(.|\n)*the reason it ended");
}

}  // namespace
}  // namespace probity::common
