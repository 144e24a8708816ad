// `probity ledger report`: the CLI parses flags and writes the report owner-only; a ledger that
// does not verify exits 1 and writes nothing.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>

#include "report_test_ledger.h"

namespace probity::report {
namespace {

using ledger::testing::kOrigin;
using ledger::testing::ScratchDir;

struct CliRun {
  int exit_code;
  std::string out;
};

CliRun Probity(const std::string& arguments) {
  const std::string command =
      (std::filesystem::path(PROBITY_TEST_BINARY_DIR) / "server/cli/probity").string() + " " +
      arguments + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  std::string out;
  char buffer[4096];
  for (size_t read; (read = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0;) {
    out.append(buffer, read);
  }
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(ReportCliTest, WritesAFilteredReportOwnerOnlyAndRefusesATamperedLedger) {
  ScratchDir scratch;
  const ledger::Options options = ledger::testing::MakeOptions(scratch);
  testing::WriteKnownLedger(options);
  const auto out = scratch.path() / "report.html";
  const std::string common = "ledger report --dir " + options.dir.string() + " --key " +
                             options.signing_key.string() + " --origin " + kOrigin;
  CliRun run = Probity(common + " --case CASE-2 --since 2026-11-18T00:00:00Z --until " +
                       std::to_string(testing::kStart + 100000) + " --out " + out.string());
  ASSERT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(ledger::testing::FileMode(out), 0600u);
  const std::string html = ledger::testing::ReadFile(out);
  EXPECT_NE(html.find("<span class=\"case-number\">CASE-2</span>"), std::string::npos);
  EXPECT_EQ(html.find(">CASE-1<"), std::string::npos);
  EXPECT_NE(html.find("case CASE-2, since 2026-11-18 00:00:00 UTC"), std::string::npos);

  // The erasure's reason changed behind the log's back (checksum fixed): no report.
  const auto segment = ledger::testing::SegmentFiles(options.dir).front();
  const std::string original = ledger::testing::ReadFile(segment);
  auto records = ledger::testing::ParseAllRecords(original);
  for (auto& record : records) {
    if (const size_t at = record.payload.find("court order 17/2026"); at != std::string::npos) {
      record.payload.replace(at, 19, "court order 18/2026");
    }
  }
  ledger::testing::WriteFile(segment, ledger::testing::RebuildSegment(original, records));
  const auto refused = scratch.path() / "refused.html";
  run = Probity(common + " --out " + refused.string());
  EXPECT_EQ(run.exit_code, 1) << run.out;
  EXPECT_NE(run.out.find("does not verify"), std::string::npos) << run.out;
  EXPECT_FALSE(std::filesystem::exists(refused));
}

}  // namespace
}  // namespace probity::report
