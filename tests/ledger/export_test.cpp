// ExportEntries: the JSON lines `probity ledger show` and `probity ledger export` write. What
// is exported must round-trip: the stored bytes decode to the appended entry and re-hash to
// the leaf hash printed beside them and stored in the tree.
#include "probity/ledger/export.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "ledger_test_util.h"
#include "probity/ledger/merkle.h"
#include "probity/ledger/reader.h"

namespace probity::ledger {
namespace {

using testing::MakeOptions;
using testing::SampleEntry;
using testing::ScratchDir;

constexpr int kEntries = 6;

class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = MakeOptions(scratch_);
    auto ledger = Ledger::Open(options_);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    for (int n = 0; n < kEntries; ++n) {
      entries_.push_back(SampleEntry(n));
      ASSERT_TRUE((*ledger)->Append(entries_.back()).ok());
    }
  }

  std::vector<nlohmann::json> Export(const ExportFilter& filter, ExportDetail detail) {
    std::ostringstream out;
    const absl::Status status = ExportEntries(options_.dir, filter, detail, out);
    EXPECT_TRUE(status.ok()) << status;
    std::vector<nlohmann::json> lines;
    std::istringstream in(out.str());
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
    return lines;
  }

  ScratchDir scratch_;
  Options options_;
  std::vector<v1::LedgerEntry> entries_;
};

TEST_F(ExportTest, StoredBytesRoundTripToTheAppendedEntriesAndTheirLeafHashes) {
  const std::vector<nlohmann::json> lines = Export({}, ExportDetail::kStoredBytes);
  ASSERT_EQ(lines.size(), static_cast<size_t>(kEntries));
  auto reader = LedgerReader::Open(options_.dir);
  ASSERT_TRUE(reader.ok()) << reader.status();
  for (int n = 0; n < kEntries; ++n) {
    const nlohmann::json& line = lines[n];
    EXPECT_EQ(line["index"].get<uint64_t>(), static_cast<uint64_t>(n));
    std::string bytes;
    ASSERT_TRUE(absl::Base64Unescape(line["bytes"].get<std::string>(), &bytes));
    v1::LedgerEntry decoded;
    ASSERT_TRUE(decoded.ParseFromString(bytes));
    EXPECT_EQ(decoded.SerializeAsString(), entries_[n].SerializeAsString());
    EXPECT_EQ(line["leaf_hash"].get<std::string>(), ToHex(HashLeaf(bytes)));
    auto stored_leaf = (*reader)->LeafHash(n);
    ASSERT_TRUE(stored_leaf.ok()) << stored_leaf.status();
    EXPECT_EQ(line["leaf_hash"].get<std::string>(), ToHex(*stored_leaf));
    EXPECT_EQ(line["entry"]["warrant_id"].get<std::string>(), entries_[n].warrant_id());
  }
}

TEST_F(ExportTest, EntriesDetailLeavesOutBytesAndKeepsDefaultFields) {
  const std::vector<nlohmann::json> lines = Export({}, ExportDetail::kEntries);
  ASSERT_EQ(lines.size(), static_cast<size_t>(kEntries));
  for (const nlohmann::json& line : lines) {
    EXPECT_FALSE(line.contains("bytes"));
    EXPECT_FALSE(line.contains("leaf_hash"));
    // Entry 0's candidate has id 0: a default value that is data, so it is printed.
    EXPECT_TRUE(line["entry"]["queries"][0]["candidates"][0].contains("id"));
  }
}

TEST_F(ExportTest, FilterSelectsByCaseTimeStartAndLimit) {
  ExportFilter by_case;
  by_case.case_number = "CASE-odd";
  std::vector<uint64_t> indexes;
  for (const auto& line : Export(by_case, ExportDetail::kEntries)) {
    indexes.push_back(line["index"].get<uint64_t>());
  }
  EXPECT_EQ(indexes, (std::vector<uint64_t>{1, 3, 5}));

  ExportFilter window;
  window.since_unix_micros = entries_[2].time_unix_micros();
  window.until_unix_micros = entries_[4].time_unix_micros();  // exclusive
  window.warrant_id = entries_[3].warrant_id();
  const auto in_window = Export(window, ExportDetail::kEntries);
  ASSERT_EQ(in_window.size(), 1u);
  EXPECT_EQ(in_window[0]["index"].get<uint64_t>(), 3u);

  ExportFilter page;
  page.from = 2;
  page.limit = 3;
  indexes.clear();
  for (const auto& line : Export(page, ExportDetail::kEntries)) {
    indexes.push_back(line["index"].get<uint64_t>());
  }
  EXPECT_EQ(indexes, (std::vector<uint64_t>{2, 3, 4}));
}

TEST(Export, MissingLedgerIsAnError) {
  ScratchDir scratch;
  std::ostringstream out;
  EXPECT_FALSE(
      ExportEntries(scratch.path() / "no-such-ledger", {}, ExportDetail::kEntries, out).ok());
}

}  // namespace
}  // namespace probity::ledger
