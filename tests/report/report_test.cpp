// The oversight report from a known ledger: what it shows per case, that it escapes ledger
// text, that its inclusion proofs verify against its signed checkpoint, its filters and bounds,
// and that it refuses a ledger that does not verify.
#include "probity/report/report.h"

#include <gtest/gtest.h>

#include <regex>

#include "absl/strings/str_split.h"
#include "probity/ledger/merkle.h"
#include "probity/ledger/reader.h"
#include "report_test_ledger.h"

namespace probity::report {
namespace {

using ledger::testing::kOrigin;
using ledger::testing::ScratchDir;

int Count(const std::string& haystack, const std::string& needle) {
  int count = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

// The text of the first element with this id (ids are unique in the report).
std::string ElementText(const std::string& html, const std::string& id) {
  const std::regex element("id=\"" + id + "\"[^>]*>([^<]*)<");
  std::smatch match;
  return std::regex_search(html, match, element) ? match[1].str() : "";
}

std::string Unescape(std::string text) {
  for (const auto& [entity, plain] : std::vector<std::pair<std::string, std::string>>{
           {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}, {"&amp;", "&"}}) {
    for (size_t at = text.find(entity); at != std::string::npos; at = text.find(entity, at)) {
      text.replace(at, entity.size(), plain);
      at += plain.size();
    }
  }
  return text;
}

class ReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = ledger::testing::MakeOptions(scratch_);
    testing::WriteKnownLedger(options_);
    auto verifier =
        ledger::NoteVerifier::FromPem(ledger::testing::ReadFile(options_.signing_key), kOrigin);
    ASSERT_TRUE(verifier.ok()) << verifier.status();
    verifier_ = *verifier;
  }

  std::string Render(ReportFilter filter = {}, ReportLimits limits = {}) {
    ReportOptions options;
    options.ledger_dir = options_.dir;
    options.origin = kOrigin;
    options.filter = std::move(filter);
    options.limits = limits;
    options.generated_at_unix_micros = testing::kStart * 1000000;
    auto html = RenderReport(options, *verifier_);
    EXPECT_TRUE(html.ok()) << html.status();
    return html.ok() ? *html : "";
  }

  ScratchDir scratch_;
  ledger::Options options_;
  std::optional<ledger::NoteVerifier> verifier_;
};

TEST_F(ReportTest, ShowsEachCaseWithItsWarrantsSearchesRefusalsAndReviews) {
  const std::string html = Render();
  EXPECT_NE(html.find("<span class=\"case-number\">CASE-1</span>"), std::string::npos);
  EXPECT_NE(html.find("<span class=\"case-number\">CASE-2</span>"), std::string::npos);
  EXPECT_NE(html.find("<span class=\"case-number\">(no verified warrant)</span>"),
            std::string::npos);
  // CASE-1: 2 searches (8 candidates), 2 refusals, 1 partial search, 1 review.
  const std::string case1 =
      html.substr(html.find(">CASE-1<"), html.find(">CASE-2<") - html.find(">CASE-1<"));
  EXPECT_NE(case1.find("<span class=\"searches-count\">2</span>"), std::string::npos);
  EXPECT_NE(case1.find("<span class=\"refusals-count\">2</span>"), std::string::npos);
  EXPECT_NE(case1.find("<span class=\"candidates-count\">8</span>"), std::string::npos);
  EXPECT_NE(case1.find("<span class=\"incomplete-count\">1</span>"), std::string::npos);
  EXPECT_NE(case1.find("<span class=\"reviews-count\">1</span>"), std::string::npos);
  EXPECT_NE(case1.find("1 candidates kept as leads, 1 rejected"), std::string::npos);
  // Refusals by reason, and the warrant: budget 50, 2 used, 48 left, validity from its terms.
  EXPECT_NE(case1.find("<td class=\"code\">budget_exhausted</td><td>1</td>"), std::string::npos);
  EXPECT_NE(case1.find("<td class=\"code\">k_over_max</td><td>1</td>"), std::string::npos);
  EXPECT_NE(case1.find("<td class=\"budget-used\">2</td><td class=\"budget-left\">48</td>"),
            std::string::npos);
  EXPECT_NE(case1.find("robbery at the harbour"), std::string::npos);
  EXPECT_NE(case1.find("<td>2026-11-19 11:06:40 UTC</td>"), std::string::npos);  // expires
  EXPECT_NE(case1.find("<svg class=\"chart\""), std::string::npos);
  // Every row names its entry; the partial search is listed twice (searches, incomplete).
  EXPECT_EQ(Count(case1, "<tr id=\"entry-1\">"), 2);
  EXPECT_NE(case1.find("<td class=\"candidates\">5</td>"), std::string::npos);
  EXPECT_NE(case1.find("<td>2/4</td>"), std::string::npos);
  // The review sits beside the search it reviews (entry 0), and in the reviews table.
  EXPECT_NE(case1.find("<td>suspect seen on camera 4</td><td><a href=\"#entry-5\">#5</a></td>"),
            std::string::npos);
  EXPECT_NE(case1.find("matches the scar on the left cheek"), std::string::npos);
  EXPECT_NE(case1.find("<b>rejected</b>"), std::string::npos);
  // Admin actions with their reasons.
  EXPECT_NE(html.find("<td class=\"action\">erase</td><td>op-1</td><td>applied</td>"
                      "<td>court order 17/2026</td>"),
            std::string::npos);
  EXPECT_NE(html.find("<span class=\"erasures-count\">1</span>"), std::string::npos);
  EXPECT_EQ(ElementText(html, "tree-size"), "8");
}

TEST_F(ReportTest, EscapesEveryLedgerString) {
  const std::string html = Render();
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("alert('x')"), std::string::npos);
  // Refusal justifications (3) and the review reason (1), escaped.
  EXPECT_EQ(Count(html, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;more&quot;"),
            4);
}

TEST_F(ReportTest, InclusionProofsVerifyAgainstTheEmbeddedSignedCheckpoint) {
  const std::string html = Render();
  const std::string note = Unescape(ElementText(html, "checkpoint"));
  auto checkpoint = ledger::OpenSignedCheckpoint(note, *verifier_, kOrigin);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status() << "\n" << note;
  EXPECT_EQ(checkpoint->size, 8u);
  const std::regex proof_row(
      "<tr class=\"proof\" id=\"proof-(\\d+)\"><td>\\d+</td><td><code class=\"leaf\">([0-9a-f]+)"
      "</code></td><td><code class=\"path\">([0-9a-f ]*)</code>");
  std::set<uint64_t> proven;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), proof_row);
       it != std::sregex_iterator(); ++it) {
    const uint64_t index = std::stoull((*it)[1].str());
    auto leaf = ledger::HashFromHex((*it)[2].str());
    ASSERT_TRUE(leaf.ok());
    std::vector<ledger::Hash> path;
    for (absl::string_view hex : absl::StrSplit((*it)[3].str(), ' ', absl::SkipEmpty())) {
      auto hash = ledger::HashFromHex(std::string_view(hex.data(), hex.size()));
      ASSERT_TRUE(hash.ok());
      path.push_back(*hash);
    }
    EXPECT_TRUE(
        ledger::VerifyInclusion(index, checkpoint->size, *leaf, path, checkpoint->root).ok())
        << "entry " << index;
    // The leaf hash is that of the stored entry.
    auto reader = ledger::LedgerReader::Open(options_.dir);
    ASSERT_TRUE(reader.ok());
    EXPECT_EQ(*(*reader)->LeafHash(index), *leaf);
    proven.insert(index);
  }
  // Every entry the report shows has its proof (here: all eight).
  EXPECT_EQ(proven.size(), 8u);
  for (uint64_t index = 0; index < 8; ++index) {
    EXPECT_NE(html.find("<a href=\"#proof-" + std::to_string(index) + "\">"), std::string::npos);
  }
}

TEST_F(ReportTest, FiltersByCaseWarrantInvestigatorAndTime) {
  ReportFilter by_case;
  by_case.case_number = "CASE-2";
  std::string html = Render(by_case);
  EXPECT_NE(html.find(">CASE-2<"), std::string::npos);
  EXPECT_EQ(html.find(">CASE-1<"), std::string::npos);
  EXPECT_EQ(html.find("(no verified warrant)"), std::string::npos);
  EXPECT_NE(html.find("court order 17/2026"), std::string::npos);  // admin: time filter only
  EXPECT_EQ(html.find("id=\"proof-0\""), std::string::npos);       // not shown, not proven

  ReportFilter by_investigator;
  by_investigator.investigator = "bo";
  html = Render(by_investigator);
  EXPECT_NE(html.find(">CASE-2<"), std::string::npos);
  EXPECT_EQ(html.find(">CASE-1<"), std::string::npos);

  ReportFilter by_warrant;
  by_warrant.warrant_id = "w1";
  html = Render(by_warrant);
  EXPECT_NE(html.find(">CASE-1<"), std::string::npos);
  EXPECT_EQ(html.find(">CASE-2<"), std::string::npos);

  ReportFilter by_time;  // [1 h, 2 h 30 min): the partial search and the budget refusal
  by_time.since_unix_micros = (testing::kStart + 3600) * 1000000;
  by_time.until_unix_micros = (testing::kStart + 9000) * 1000000;
  html = Render(by_time);
  EXPECT_NE(html.find("<span class=\"searches-count\">1</span>"), std::string::npos);
  EXPECT_EQ(html.find(">CASE-2<"), std::string::npos);
  EXPECT_EQ(html.find("court order"), std::string::npos);
  // Budget used counts the warrant's whole life, not the window: 2 of 50.
  EXPECT_NE(html.find("<td class=\"budget-used\">2</td><td class=\"budget-left\">48</td>"),
            std::string::npos);
}

TEST_F(ReportTest, ShowsTheFirstAndLastRowsOfALongTable) {
  {
    auto ledger = ledger::Ledger::Open(options_);
    ASSERT_TRUE(ledger.ok());
    for (int i = 0; i < 9; ++i) {
      ASSERT_TRUE(
          (*ledger)->Append(testing::SearchEntry("CASE-2", "w2", "bo", 100000 + i, 1)).ok());
    }
  }
  ReportLimits limits;
  limits.rows_per_table = 2;
  limits.max_cases = 1;
  const std::string html = Render({}, limits);
  // CASE-1 comes first (sorted); CASE-2 and the refusals without a warrant are counted only.
  EXPECT_NE(html.find(">CASE-1<"), std::string::npos);
  EXPECT_EQ(html.find(">CASE-2<"), std::string::npos);
  EXPECT_NE(html.find("11 entries of further cases are not shown"), std::string::npos);
  ReportFilter by_case;
  by_case.case_number = "CASE-2";
  const std::string case2 = Render(by_case, limits);
  // 10 searches: first 2, "6 rows between", last 2.
  EXPECT_NE(case2.find("<span class=\"searches-count\">10</span>"), std::string::npos);
  EXPECT_NE(case2.find("6 rows between these are not shown"), std::string::npos);
  EXPECT_NE(case2.find("<tr id=\"entry-4\">"), std::string::npos);
  EXPECT_NE(case2.find("<tr id=\"entry-16\">"), std::string::npos);
  EXPECT_EQ(case2.find("<tr id=\"entry-12\">"), std::string::npos);
}

TEST_F(ReportTest, RefusesALedgerThatDoesNotVerify) {
  // Change the erasure's reason and fix the record's checksum: the stored tree and the
  // signed commit markers no longer match.
  const auto segment = ledger::testing::SegmentFiles(options_.dir).front();
  const std::string original = ledger::testing::ReadFile(segment);
  auto records = ledger::testing::ParseAllRecords(original);
  bool changed = false;
  for (auto& record : records) {
    const size_t at = record.payload.find("court order 17/2026");
    if (record.type == ledger::testing::kEntryRecord && at != std::string::npos) {
      record.payload.replace(at, 19, "court order 99/2026");
      changed = true;
    }
  }
  ASSERT_TRUE(changed);
  ledger::testing::WriteFile(segment, ledger::testing::RebuildSegment(original, records));

  ReportOptions options;
  options.ledger_dir = options_.dir;
  options.origin = kOrigin;
  auto html = RenderReport(options, *verifier_);
  ASSERT_FALSE(html.ok());
  EXPECT_EQ(html.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(html.status().message().find("does not verify"), std::string::npos);
  EXPECT_NE(html.status().message().find("first bad entry 6"), std::string::npos) << html.status();
}

TEST_F(ReportTest, RefusesAnotherKey) {
  ScratchDir other;
  ASSERT_TRUE(ledger::GenerateSigningKey(other.path() / "other.pem").ok());
  auto foreign =
      ledger::NoteVerifier::FromPem(ledger::testing::ReadFile(other.path() / "other.pem"), kOrigin);
  ASSERT_TRUE(foreign.ok());
  ReportOptions options;
  options.ledger_dir = options_.dir;
  auto html = RenderReport(options, *foreign);
  ASSERT_FALSE(html.ok());
  EXPECT_EQ(html.status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace probity::report
