// GoogleTest entry point for every Probity test binary. It exports the source and build
// directories as PROBITY_SOURCE_DIR / PROBITY_BINARY_DIR (unless the caller set them), so a test
// finds shared data and the probity binary however it is started: through CTest or by hand.
// (CTest's ENVIRONMENT property cannot carry two variables through gtest_discover_tests.) A test
// binary that ends through std::terminate says why (probity/common/terminate_report.h).
#include <gtest/gtest.h>

#include <cstdlib>

#include "probity/common/terminate_report.h"

int main(int argc, char** argv) {
  probity::common::InstallTerminateReport();
  setenv("PROBITY_SOURCE_DIR", PROBITY_TEST_SOURCE_DIR, /*overwrite=*/0);
  setenv("PROBITY_BINARY_DIR", PROBITY_TEST_BINARY_DIR, /*overwrite=*/0);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
