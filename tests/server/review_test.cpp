// ReviewService.RecordReview: the investigator's review of a search's candidates is its own
// REVIEW ledger entry under the search's warrant, charging no budget; reviews of searches that
// do not exist or ran under another warrant, of candidates the search did not return, with
// overlong reasons or without a warrant are refused and recorded.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "probity/client/call_status.h"
#include "probity/client/review_client.h"
#include "probity/client/search_client.h"
#include "probity/common/file_read.h"
#include "probity/ledger/reader.h"
#include "probity/service/review_service.h"
#include "probity/service/server.h"
#include "test_support.h"

namespace probity::service::testing {
namespace {

class ReviewTest : public SharedWorldTest<ReviewTest, 2> {
 protected:
  void SetUp() override {
    UseOwnLedgerAndState("review-");
    auto server = Server::StartRouter(config_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                       grpc::InsecureChannelCredentials());
    search_ = std::make_unique<client::SearchClient>(channel);
    review_ = std::make_unique<client::ReviewClient>(channel);
  }

  // Runs one search of query 0 under `token`; returns its response.
  v1::SearchResponse Search(const std::string& token) {
    v1::SearchRequest request;
    request.set_collection(kCollection);
    request.set_k(5);
    const int dim = world_->gallery.dim;
    request.add_queries()->mutable_values()->Add(world_->gallery.queries.begin(),
                                                 world_->gallery.queries.begin() + dim);
    const absl::StatusOr<v1::SearchResponse> response = search_->Search(request, token);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.value_or(v1::SearchResponse());
  }

  absl::StatusOr<v1::RecordReviewResponse> Review(const std::string& token,
                                                  const v1::RecordReviewRequest& request) {
    return review_->RecordReview(request, token);
  }

  static v1::RecordReviewRequest Decisions(uint64_t search_entry,
                                           const v1::SearchResponse& search) {
    v1::RecordReviewRequest request;
    request.set_search_entry_index(search_entry);
    auto* kept = request.add_reviews();
    kept->set_id(search.results(0).candidates(0).id());
    kept->set_outcome(v1::REVIEW_OUTCOME_KEPT);
    kept->set_reason("same scar on the left cheek");
    auto* rejected = request.add_reviews();
    rejected->set_id(search.results(0).candidates(1).id());
    rejected->set_outcome(v1::REVIEW_OUTCOME_REJECTED);
    rejected->set_reason("different ear shape");
    return request;
  }

  v1::LedgerEntry Entry(uint64_t index) {
    v1::LedgerEntry entry;
    EXPECT_TRUE(ledger::ReadEntries(Resolve(config_, config_.ledger.dir), index,
                                    [&](uint64_t, std::string_view bytes) {
                                      EXPECT_TRUE(entry.ParseFromArray(
                                          bytes.data(), static_cast<int>(bytes.size())));
                                      return false;
                                    })
                    .ok());
    return entry;
  }

  std::unique_ptr<Server> server_;
  std::unique_ptr<client::SearchClient> search_;
  std::unique_ptr<client::ReviewClient> review_;
};

TEST_F(ReviewTest, ReviewIsItsOwnEntryUnderTheSearchWarrantAndChargesNoBudget) {
  warrant::Claims claims = GoodClaims();
  claims.max_queries = 1;  // the search spends the whole budget; the review needs none
  const std::string token = Issue(*world_, claims);
  const v1::SearchResponse search = Search(token);
  ASSERT_GE(search.results(0).candidates_size(), 2);
  const uint64_t search_entry = search.receipt().entry_index();

  const absl::StatusOr<v1::RecordReviewResponse> response =
      Review(token, Decisions(search_entry, search));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_GT(response->receipt().entry_index(), search_entry);
  EXPECT_FALSE(response->receipt().signed_checkpoint().empty());

  const v1::LedgerEntry entry = Entry(response->receipt().entry_index());
  EXPECT_EQ(entry.kind(), v1::ENTRY_KIND_REVIEW);
  EXPECT_EQ(entry.review().search_entry_index(), search_entry);
  EXPECT_EQ(entry.warrant_id(), claims.jti);
  EXPECT_EQ(entry.issuer(), claims.iss);
  EXPECT_EQ(entry.investigator().sub(), "investigator-7");
  EXPECT_EQ(entry.case_number(), claims.case_number);
  EXPECT_EQ(entry.query_count(), 0u);
  EXPECT_EQ(entry.warrant_terms().max_queries(), 1);
  ASSERT_EQ(entry.review().candidates_size(), 2);
  EXPECT_EQ(entry.review().candidates(0).outcome(), v1::REVIEW_OUTCOME_KEPT);
  EXPECT_EQ(entry.review().candidates(0).reason(), "same scar on the left cheek");
  EXPECT_EQ(entry.review().candidates(1).outcome(), v1::REVIEW_OUTCOME_REJECTED);
  // The search entry carries the warrant's terms too.
  EXPECT_EQ(Entry(search_entry).warrant_terms().expires(), claims.exp);
}

TEST_F(ReviewTest, RefusesWhatItCannotTieToTheWarrantsOwnSearch) {
  const warrant::Claims claims = GoodClaims();
  const std::string token = Issue(*world_, claims);
  const v1::SearchResponse search = Search(token);
  ASSERT_GE(search.results(0).candidates_size(), 2);
  const uint64_t search_entry = search.receipt().entry_index();
  // No warrant.
  EXPECT_EQ(Review("", Decisions(search_entry, search)).status().code(),
            absl::StatusCode::kUnauthenticated);

  // A search entry that does not exist, and an entry that is not a search.
  v1::RecordReviewRequest missing = Decisions(search_entry + 1000, search);
  absl::Status status = Review(token, missing).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(status.message().find("unknown_search_entry"), std::string::npos);
  const std::optional<uint64_t> recorded = client::LedgerEntryOf(status);
  ASSERT_TRUE(recorded.has_value());
  const v1::LedgerEntry refusal = Entry(*recorded);
  EXPECT_EQ(refusal.kind(), v1::ENTRY_KIND_REFUSAL);
  EXPECT_EQ(refusal.refusal().code(), "unknown_search_entry");
  EXPECT_EQ(refusal.review().search_entry_index(), search_entry + 1000);
  EXPECT_EQ(Review(token, Decisions(*recorded, search)).status().code(),
            absl::StatusCode::kNotFound);

  // Another warrant's search, even of the same investigator and case.
  const std::string other = Issue(*world_, GoodClaims());
  status = Review(other, Decisions(search_entry, search)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(status.message().find("other_warrant"), std::string::npos);

  // A candidate the search did not return.
  v1::RecordReviewRequest invented = Decisions(search_entry, search);
  invented.mutable_reviews(0)->set_id(-42);
  status = Review(token, invented).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("not among the candidates"), std::string::npos);

  // A reason over the bound, no reason, no outcome, the same candidate twice.
  v1::RecordReviewRequest wordy = Decisions(search_entry, search);
  wordy.mutable_reviews(0)->set_reason(std::string(kMaxReviewReasonBytes + 1, 'x'));
  EXPECT_EQ(Review(token, wordy).status().code(), absl::StatusCode::kInvalidArgument);
  v1::RecordReviewRequest silent = Decisions(search_entry, search);
  silent.mutable_reviews(0)->clear_reason();
  EXPECT_EQ(Review(token, silent).status().code(), absl::StatusCode::kInvalidArgument);
  v1::RecordReviewRequest undecided = Decisions(search_entry, search);
  undecided.mutable_reviews(0)->set_outcome(v1::REVIEW_OUTCOME_UNSPECIFIED);
  EXPECT_EQ(Review(token, undecided).status().code(), absl::StatusCode::kInvalidArgument);
  v1::RecordReviewRequest twice = Decisions(search_entry, search);
  *twice.add_reviews() = twice.reviews(0);
  EXPECT_EQ(Review(token, twice).status().code(), absl::StatusCode::kInvalidArgument);

  // The same warrant (issuer and id) reissued without the search's collection in scope.
  warrant::Claims narrowed = claims;
  narrowed.collections = {"elsewhere"};
  status = Review(Issue(*world_, narrowed), Decisions(search_entry, search)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(status.message().find("collection_out_of_scope"), std::string::npos);

  // None of these became a review.
  ASSERT_TRUE(ledger::ReadEntries(Resolve(config_, config_.ledger.dir), 0,
                                  [&](uint64_t, std::string_view bytes) {
                                    v1::LedgerEntry entry;
                                    EXPECT_TRUE(entry.ParseFromArray(
                                        bytes.data(), static_cast<int>(bytes.size())));
                                    EXPECT_NE(entry.kind(), v1::ENTRY_KIND_REVIEW);
                                    return true;
                                  })
                  .ok());
}

TEST_F(ReviewTest, TheInvestigatorsCliRecordsAReview) {
  const std::string token = Issue(*world_, GoodClaims());
  const v1::SearchResponse search = Search(token);
  ASSERT_GE(search.results(0).candidates_size(), 2);
  const auto dir = world_->dir->path();
  std::ofstream(dir / "review-warrant.jwt") << token << "\n";
  const std::string command =
      ProbityBinary().string() + " review --server 127.0.0.1:" + std::to_string(server_->port()) +
      " --warrant " + (dir / "review-warrant.jwt").string() + " --search-entry " +
      std::to_string(search.receipt().entry_index()) + " --keep '" +
      std::to_string(search.results(0).candidates(0).id()) + ":same scar' --reject '0/" +
      std::to_string(search.results(0).candidates(1).id()) + ":different ears' > " +
      (dir / "review.out").string() + " 2>&1";
  EXPECT_EQ(std::system(command.c_str()), 0);
  const std::string printed = common::ReadFileToString(dir / "review.out").value_or("");
  EXPECT_NE(printed.find("review recorded: ledger entry"), std::string::npos) << printed;
  const v1::LedgerEntry entry = Entry(search.receipt().entry_index() + 1);
  EXPECT_EQ(entry.kind(), v1::ENTRY_KIND_REVIEW);
  ASSERT_EQ(entry.review().candidates_size(), 2);
  EXPECT_EQ(entry.review().candidates(0).reason(), "same scar");
  EXPECT_EQ(entry.review().candidates(1).outcome(), v1::REVIEW_OUTCOME_REJECTED);
}

}  // namespace
}  // namespace probity::service::testing
