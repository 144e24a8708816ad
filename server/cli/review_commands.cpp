// probity review: the investigator records, per candidate of a search they reviewed, whether
// it was kept as a lead or rejected, and why (ReviewService.RecordReview, under the search's
// warrant; the review is its own ledger entry).
#include <iostream>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "command_registry.h"
#include "probity/client/call_status.h"
#include "probity/client/review_client.h"
#include "probity/client/trimmed_file.h"

namespace probity::cli {
namespace {

struct ReviewFlags {
  std::string server = "127.0.0.1:7443";
  std::string warrant_file;
  uint64_t search_entry = 0;
  std::vector<std::string> keep, reject;
  std::string ca_file, cert_file, key_file;
  int timeout_seconds = 30;
};

// "[QUERY/]ID:REASON": query 0 unless given.
absl::StatusOr<v1::CandidateReview> ParseDecision(const std::string& text,
                                                  v1::ReviewOutcome outcome) {
  const size_t colon = text.find(':');
  if (colon == std::string::npos || colon + 1 == text.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "': expected [QUERY/]ID:REASON, e.g. 1234:matches the scar"));
  }
  std::string candidate = text.substr(0, colon);
  v1::CandidateReview review;
  if (const size_t slash = candidate.find('/'); slash != std::string::npos) {
    uint32_t query = 0;
    if (!absl::SimpleAtoi(candidate.substr(0, slash), &query)) {
      return absl::InvalidArgumentError(absl::StrCat("'", text, "': bad query number"));
    }
    review.set_query(query);
    candidate = candidate.substr(slash + 1);
  }
  int64_t id = 0;
  if (!absl::SimpleAtoi(candidate, &id)) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "': bad candidate id"));
  }
  review.set_id(id);
  review.set_outcome(outcome);
  review.set_reason(text.substr(colon + 1));
  return review;
}

absl::Status RunReview(const ReviewFlags& flags) {
  auto token = client::ReadTrimmedFile(flags.warrant_file);
  if (!token.ok()) return token.status();
  v1::RecordReviewRequest request;
  request.set_search_entry_index(flags.search_entry);
  for (const auto& [texts, outcome] : {std::pair{&flags.keep, v1::REVIEW_OUTCOME_KEPT},
                                       std::pair{&flags.reject, v1::REVIEW_OUTCOME_REJECTED}}) {
    for (const std::string& text : *texts) {
      auto review = ParseDecision(text, outcome);
      if (!review.ok()) return review.status();
      *request.add_reviews() = *review;
    }
  }
  if (request.reviews_size() == 0) {
    return absl::InvalidArgumentError("name at least one candidate with --keep or --reject");
  }
  auto review_client =
      client::ReviewClient::Connect(flags.server, {flags.ca_file, flags.cert_file, flags.key_file});
  if (!review_client.ok()) return review_client.status();
  auto response =
      review_client->RecordReview(request, *token, absl::Seconds(flags.timeout_seconds));
  if (!response.ok()) {
    std::string detail =
        absl::StrCat("review refused or failed (", static_cast<int>(response.status().code()),
                     "): ", response.status().message());
    if (std::optional<uint64_t> entry = client::LedgerEntryOf(response.status())) {
      absl::StrAppend(&detail, " [ledger entry ", *entry, "]");
    }
    return absl::Status(response.status().code(), detail);
  }
  std::cout << "review recorded: ledger entry " << response->receipt().entry_index()
            << " (of search entry " << flags.search_entry << ", " << request.reviews_size()
            << " candidates)\n"
            << "ledger verifier key: " << response->receipt().verifier_key() << "\n"
            << "signed checkpoint:\n"
            << response->receipt().signed_checkpoint();
  return absl::OkStatus();
}

void AddReviewCommands(CLI::App& root) {
  auto flags = std::make_shared<ReviewFlags>();
  CLI::App* review = root.add_subcommand(
      "review",
      "record your human review of a search's candidates (kept as a lead or rejected, with a "
      "reason of at most 512 bytes) under the search's warrant; it becomes a ledger entry");
  review->add_option("--server", flags->server, "host:port")->capture_default_str();
  review->add_option("--warrant", flags->warrant_file, "File holding the search's warrant (JWS)")
      ->required();
  review
      ->add_option("--search-entry", flags->search_entry,
                   "the search's ledger entry (its receipt's entry index)")
      ->required();
  review->add_option("--keep", flags->keep, "[QUERY/]ID:REASON kept as a lead (repeatable)");
  review->add_option("--reject", flags->reject, "[QUERY/]ID:REASON rejected (repeatable)");
  review->add_option("--ca", flags->ca_file, "CA certificate: use TLS");
  review->add_option("--cert", flags->cert_file, "Client certificate for mutual TLS");
  review->add_option("--key", flags->key_file, "Client key for mutual TLS");
  review->add_option("--timeout", flags->timeout_seconds, "Seconds")->capture_default_str();
  review->callback([flags] { ExitOnError(RunReview(*flags)); });
}

}  // namespace

PROBITY_REGISTER_COMMANDS("review", AddReviewCommands);

}  // namespace probity::cli
