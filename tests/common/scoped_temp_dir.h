#pragma once

// A fresh directory under the system temporary directory for one test (or one suite), removed
// with everything in it when the object goes. mkdtemp(3) makes it mode 0700 with a unique name,
// so parallel tests (ctest -j) never share one.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace probity::test_support {

class ScopedTempDir {
 public:
  explicit ScopedTempDir(const std::string& prefix = "probity-test") {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      ADD_FAILURE() << "cannot create a temporary directory " << pattern;
      return;
    }
    path_ = pattern;
  }
  ~ScopedTempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  // Empty when the directory could not be made (the test has failed already).
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace probity::test_support
