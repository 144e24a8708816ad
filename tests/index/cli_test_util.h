#pragma once

// Helpers for tests that run the probity binary as an operator would.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "probity/common/file_read.h"

namespace probity::index::testing {

inline std::string ProbityBinary() {
  const char* dir = std::getenv("PROBITY_BINARY_DIR");
  return (std::filesystem::path(dir != nullptr ? dir : ".") / "server" / "cli" / "probity")
      .string();
}

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

inline CommandResult RunProbity(const std::string& arguments,
                                const std::filesystem::path& scratch) {
  const std::filesystem::path log = scratch / "command.log";
  const std::string command = ProbityBinary() + " " + arguments + " > " + log.string() + " 2>&1";
  const int status = std::system(command.c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.output = common::ReadFileToString(log).value_or("");
  return result;
}

// Rows of `probity eval --csv`: nprobe, recall, identity hit rate (-1 when absent).
struct CsvRow {
  int nprobe = 0;
  double recall = 0;
  double identity_hit = -1;
};

inline std::vector<CsvRow> ReadEvalCsv(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  std::vector<CsvRow> rows;
  while (std::getline(in, line)) {
    const std::vector<std::string> cells = absl::StrSplit(line, ',');
    if (cells.size() < 3) continue;
    CsvRow row;
    (void)absl::SimpleAtoi(cells[0], &row.nprobe);
    (void)absl::SimpleAtod(cells[1], &row.recall);
    if (!cells[2].empty()) (void)absl::SimpleAtod(cells[2], &row.identity_hit);
    rows.push_back(row);
  }
  return rows;
}

}  // namespace probity::index::testing
