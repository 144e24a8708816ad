#pragma once

// A known test ledger for the report tests: two cases, searches (one with partial coverage),
// refusals with and without a verified warrant, a human review, an erasure, and a
// justification carrying markup.

#include <filesystem>
#include <string>

#include "../ledger/ledger_test_util.h"
#include "probity/ledger/checkpoint.h"
#include "probity/ledger/ledger.h"

namespace probity::report::testing {

inline constexpr int64_t kStart = 1795000000;  // 2026-11-18 11:06:40 UTC
inline constexpr char kHostileText[] = "<script>alert('x')</script> & \"more\"";

inline v1::LedgerEntry WarrantEntry(const std::string& case_number, const std::string& jti,
                                    const std::string& sub, int64_t seconds) {
  v1::LedgerEntry entry;
  entry.set_time_unix_micros((kStart + seconds) * 1000000);
  entry.set_issuer("issuer-A");
  entry.set_warrant_id(jti);
  entry.set_case_number(case_number);
  entry.set_purpose("robbery at the harbour");
  entry.mutable_investigator()->set_sub(sub);
  entry.add_collections("faces");
  auto* terms = entry.mutable_warrant_terms();
  terms->set_issued_at(kStart);
  terms->set_not_before(kStart);
  terms->set_expires(kStart + 86400);
  terms->set_max_queries(50);
  terms->set_max_k(10);
  return entry;
}

inline v1::LedgerEntry SearchEntry(const std::string& case_number, const std::string& jti,
                                   const std::string& sub, int64_t seconds, int candidates,
                                   uint32_t answered = 4) {
  v1::LedgerEntry entry = WarrantEntry(case_number, jti, sub, seconds);
  entry.set_kind(v1::ENTRY_KIND_SEARCH);
  entry.set_query_count(1);
  entry.mutable_parameters()->set_k(static_cast<uint32_t>(candidates));
  auto* query = entry.add_queries();
  query->set_vector_sha256(std::string(32, 'q'));
  for (int i = 0; i < candidates; ++i) {
    auto* candidate = query->add_candidates();
    candidate->set_id(1000 + i);
    candidate->set_score(0.9f - 0.01f * static_cast<float>(i));
  }
  entry.mutable_coverage()->set_shards_answered(answered);
  entry.mutable_coverage()->set_shards_total(4);
  entry.set_outcome(answered == 4 ? v1::OUTCOME_ANSWERED : v1::OUTCOME_ANSWERED_PARTIAL);
  entry.set_justification("suspect seen on camera 4");
  return entry;
}

inline v1::LedgerEntry RefusalEntry(const std::string& case_number, const std::string& jti,
                                    int64_t seconds, const std::string& code) {
  v1::LedgerEntry entry =
      jti.empty() ? v1::LedgerEntry() : WarrantEntry(case_number, jti, "ana", seconds);
  entry.set_time_unix_micros((kStart + seconds) * 1000000);
  entry.set_kind(v1::ENTRY_KIND_REFUSAL);
  entry.set_outcome(v1::OUTCOME_REFUSED);
  entry.mutable_refusal()->set_code(code);
  entry.mutable_refusal()->set_message("refused: " + code);
  entry.set_justification(kHostileText);
  return entry;
}

// Writes the known ledger; returns the signing key path. Indices:
//  0 search  CASE-1 w1 ana  5 candidates
//  1 search  CASE-1 w1 ana  3 candidates, 2/4 shards (partial)
//  2 refusal CASE-1 w1 budget_exhausted (justification with markup)
//  3 refusal (no warrant) invalid_token
//  4 search  CASE-2 w2 bo   2 candidates
//  5 review  CASE-1 w1 ana  of entry 0: 1000 kept, 1001 rejected
//  6 admin   erase, reason "court order 17/2026"
//  7 refusal CASE-1 w1 k_over_max
inline void WriteKnownLedger(const ledger::Options& options) {
  auto ledger = ledger::Ledger::Open(options);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  auto append = [&](const v1::LedgerEntry& entry) { ASSERT_TRUE((*ledger)->Append(entry).ok()); };
  append(SearchEntry("CASE-1", "w1", "ana", 0, 5));
  append(SearchEntry("CASE-1", "w1", "ana", 3600, 3, /*answered=*/2));
  append(RefusalEntry("CASE-1", "w1", 7200, "budget_exhausted"));
  append(RefusalEntry("", "", 7300, "invalid_token"));
  append(SearchEntry("CASE-2", "w2", "bo", 90000, 2));
  v1::LedgerEntry review = WarrantEntry("CASE-1", "w1", "ana", 9000);
  review.set_kind(v1::ENTRY_KIND_REVIEW);
  review.mutable_review()->set_search_entry_index(0);
  auto* kept = review.mutable_review()->add_candidates();
  kept->set_id(1000);
  kept->set_outcome(v1::REVIEW_OUTCOME_KEPT);
  kept->set_reason("matches the scar on the left cheek");
  auto* rejected = review.mutable_review()->add_candidates();
  rejected->set_id(1001);
  rejected->set_outcome(v1::REVIEW_OUTCOME_REJECTED);
  rejected->set_reason(kHostileText);
  append(review);
  v1::LedgerEntry erase;
  erase.set_time_unix_micros((kStart + 10000) * 1000000);
  erase.set_kind(v1::ENTRY_KIND_ADMIN);
  erase.set_outcome(v1::OUTCOME_APPLIED);
  erase.mutable_admin()->set_action("erase");
  erase.mutable_admin()->set_operator_("op-1");
  erase.mutable_admin()->set_reason("court order 17/2026");
  erase.mutable_admin()->add_ids(1003);
  append(erase);
  append(RefusalEntry("CASE-1", "w1", 11000, "k_over_max"));
}

}  // namespace probity::report::testing
