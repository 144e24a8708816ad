// The embedded server (router + local shards + ledger in one process) over real gRPC on
// loopback: results, refusals, fail-closed ledger, budget across restarts, roles, receipts.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "failing_ledger.h"
#include "probity/client/call_status.h"
#include "probity/client/search_client.h"
#include "probity/common/sha256.h"
#include "probity/index/generation.h"
#include "probity/ledger/checkpoint.h"
#include "probity/ledger/merkle.h"
#include "probity/service/auth.h"
#include "probity/service/search_entry.h"
#include "probity/service/search_service.h"
#include "probity/service/server.h"
#include "probity/v1/admin.grpc.pb.h"
#include "probity/v1/ledger_service.grpc.pb.h"
#include "probity/v1/search.grpc.pb.h"
#include "probity/warrant/issue.h"
#include "probity/warrant/jws.h"
#include "test_support.h"

namespace probity::service::testing {
namespace {

struct Clients {
  explicit Clients(int port)
      : Clients(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                    grpc::InsecureChannelCredentials())) {}
  explicit Clients(std::shared_ptr<grpc::Channel> over)
      : channel(std::move(over)), search(channel) {
    admin = v1::Admin::NewStub(channel);
    ledger = v1::Ledger::NewStub(channel);
  }
  std::shared_ptr<grpc::Channel> channel;
  client::SearchClient search;
  std::unique_ptr<v1::Admin::Stub> admin;
  std::unique_ptr<v1::Ledger::Stub> ledger;
};

void Authorize(grpc::ClientContext& context, const std::string& token) {
  context.AddMetadata("authorization", "Bearer " + token);
}

class EmbeddedServiceTest : public SharedWorldTest<EmbeddedServiceTest, 3> {
 protected:
  void SetUp() override {
    UseOwnLedgerAndState("");
    StartServer();
  }

  void StartServer(Server::Overrides overrides = {}) {
    server_.reset();
    auto server = Server::StartRouter(config_, std::move(overrides));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    clients_ = std::make_unique<Clients>(server_->port());
  }

  v1::SearchRequest Request(int first_query, int count, uint32_t k = 10) const {
    v1::SearchRequest request;
    request.set_collection(kCollection);
    request.set_k(k);
    request.set_nprobe(8);
    request.set_justification("unit of work 42");
    const int dim = world_->gallery.dim;
    for (int q = first_query; q < first_query + count; ++q) {
      const float* begin = world_->gallery.queries.data() + q * dim;
      request.add_queries()->mutable_values()->Add(begin, begin + dim);
    }
    return request;
  }

  grpc::Status Search(const std::string& token, const v1::SearchRequest& request,
                      v1::SearchResponse* response, std::optional<uint64_t>* ledger_index) {
    return SearchAsGrpcStatus(clients_->search, token, request, absl::InfiniteDuration(), response,
                              ledger_index);
  }

  v1::LedgerEntry Entry(uint64_t index) {
    grpc::ClientContext context;
    Authorize(context, kAuditorToken);
    v1::GetEntriesRequest request;
    request.set_start(index);
    request.set_count(1);
    v1::GetEntriesResponse response;
    grpc::Status status = clients_->ledger->GetEntries(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    v1::LedgerEntry entry;
    if (response.entries_size() == 1) {
      EXPECT_TRUE(entry.ParseFromString(response.entries(0).entry()));
    }
    return entry;
  }

  v1::StatsResponse Stats() {
    grpc::ClientContext context;
    Authorize(context, kOperatorToken);
    v1::StatsResponse stats;
    grpc::Status status = clients_->admin->Stats(&context, v1::StatsRequest(), &stats);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return stats;
  }

  std::unique_ptr<Server> server_;
  std::unique_ptr<Clients> clients_;
};

TEST_F(EmbeddedServiceTest, ResultsEqualOfflineSearchIdForId) {
  const std::string token = Issue(*world_, GoodClaims());
  v1::SearchResponse response;
  std::optional<uint64_t> ledger_index;
  const v1::SearchRequest request = Request(0, 12);
  {
    // A raw stub: this checks the `probity-ledger-index` trailer of an answered search, which
    // SearchClient does not expose (it reads the trailer of failed calls only).
    grpc::ClientContext context;
    Authorize(context, token);
    grpc::Status status =
        v1::Search::NewStub(clients_->channel)->Search(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    const auto& trailers = context.GetServerTrailingMetadata();
    if (auto it = trailers.find(kLedgerIndexTrailer); it != trailers.end()) {
      ledger_index = std::stoull(std::string(it->second.data(), it->second.size()));
    }
  }

  auto offline = index::LoadGeneration(world_->generation_dir);
  ASSERT_TRUE(offline.ok()) << offline.status();
  index::SearchParams params;
  params.k = 10;
  params.nprobe = 8;
  auto expected = (*offline)->Search(world_->gallery.queries, params);
  ASSERT_TRUE(expected.ok()) << expected.status();
  ASSERT_EQ(response.results_size(), 12);
  for (int q = 0; q < 12; ++q) {
    const auto& got = response.results(q).candidates();
    ASSERT_EQ(got.size(), static_cast<int>((*expected)[q].size())) << "query " << q;
    for (int r = 0; r < got.size(); ++r) {
      EXPECT_EQ(got[r].id(), (*expected)[q][r].id) << "query " << q << " rank " << r + 1;
      EXPECT_EQ(got[r].rank(), static_cast<uint32_t>(r + 1));
      EXPECT_FLOAT_EQ(got[r].score(), (*expected)[q][r].score);
      EXPECT_EQ(got[r].shard(), (*expected)[q][r].shard);
    }
  }
  EXPECT_EQ(response.coverage().shards_answered(), 3u);
  EXPECT_EQ(response.coverage().shards_total(), 3u);
  EXPECT_FALSE(response.coverage().partial());

  // The ledger entry carries the query hashes and the very candidates that were answered.
  ASSERT_TRUE(ledger_index.has_value());
  EXPECT_EQ(*ledger_index, response.receipt().entry_index());
  const v1::LedgerEntry entry = Entry(response.receipt().entry_index());
  EXPECT_EQ(entry.kind(), v1::ENTRY_KIND_SEARCH);
  EXPECT_EQ(entry.outcome(), v1::OUTCOME_ANSWERED);
  EXPECT_EQ(entry.query_count(), 12u);
  EXPECT_EQ(entry.case_number(), "CASE-2026-001");
  EXPECT_EQ(entry.investigator().sub(), "investigator-7");
  EXPECT_EQ(entry.justification(), "unit of work 42");
  EXPECT_EQ(entry.warrant_sha256(), common::Sha256Bytes(token));
  {
    // The same warrant again (the verifier's cache): the same hash on record.
    v1::SearchResponse again;
    std::optional<uint64_t> again_index;
    ASSERT_TRUE(Search(token, Request(0, 1), &again, &again_index).ok());
    ASSERT_TRUE(again_index.has_value());
    EXPECT_EQ(Entry(*again_index).warrant_sha256(), common::Sha256Bytes(token));
  }
  EXPECT_EQ(entry.coverage().shards_answered(), 3u);
  ASSERT_EQ(entry.queries_size(), 12);
  for (int q = 0; q < 12; ++q) {
    EXPECT_EQ(entry.queries(q).vector_sha256().size(), 32u);
    ASSERT_EQ(entry.queries(q).candidates_size(), response.results(q).candidates_size());
    for (int r = 0; r < entry.queries(q).candidates_size(); ++r) {
      EXPECT_EQ(entry.queries(q).candidates(r).id(), response.results(q).candidates(r).id());
    }
  }
}

TEST_F(EmbeddedServiceTest, ReceiptCheckpointIsSignedAndIncludesTheEntry) {
  const std::string token = Issue(*world_, GoodClaims());
  for (int i = 0; i < 3; ++i) {
    v1::SearchResponse response;
    ASSERT_TRUE(Search(token, Request(i, 1), &response, nullptr).ok());
    const auto& receipt = response.receipt();
    auto verifier = ledger::NoteVerifier::FromVerifierKey(receipt.verifier_key());
    ASSERT_TRUE(verifier.ok()) << verifier.status() << ": " << receipt.verifier_key();
    auto checkpoint =
        ledger::OpenSignedCheckpoint(receipt.signed_checkpoint(), *verifier, "probity-test/ledger");
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
    ASSERT_GT(checkpoint->size, receipt.entry_index());

    grpc::ClientContext context;
    Authorize(context, kAuditorToken);
    v1::GetInclusionProofRequest request;
    request.set_index(receipt.entry_index());
    request.set_tree_size(checkpoint->size);
    v1::GetInclusionProofResponse proof;
    ASSERT_TRUE(clients_->ledger->GetInclusionProof(&context, request, &proof).ok());
    std::vector<ledger::Hash> path;
    for (const std::string& h : proof.hashes()) {
      ledger::Hash hash;
      ASSERT_EQ(h.size(), hash.size());
      std::copy(h.begin(), h.end(), hash.begin());
      path.push_back(hash);
    }
    const v1::LedgerEntry entry = Entry(receipt.entry_index());
    EXPECT_TRUE(ledger::VerifyInclusion(receipt.entry_index(), checkpoint->size,
                                        ledger::HashLeaf(entry.SerializeAsString()), path,
                                        checkpoint->root)
                    .ok());
  }
}

struct RefusalCase {
  std::string name;
  grpc::StatusCode code;
  std::string refusal;
};

TEST_F(EmbeddedServiceTest, EveryRefusalClassGetsItsStatusRunsNoSearchAndIsRecorded) {
  const int64_t now = time(nullptr);
  auto sign = [&](const std::string& header, const std::string& payload) {
    auto token = warrant::SignCompactJws(header, payload, *world_->issuer_key);
    EXPECT_TRUE(token.ok());
    return *token;
  };
  const std::string good_header =
      std::string(R"({"alg":"EdDSA","typ":"JWT","kid":")") + kKid + "\"}";
  auto payload_with = [&](const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json payload = nlohmann::json::parse(warrant::ClaimsToJson(GoodClaims()));
    edit(payload);
    return payload.dump();
  };
  auto claims_with = [&](const std::function<void(warrant::Claims&)>& edit) {
    warrant::Claims claims = GoodClaims();
    edit(claims);
    return Issue(*world_, claims);
  };
  const std::string good = Issue(*world_, GoodClaims());
  std::string bad_signature = good;
  bad_signature[bad_signature.size() - 5] =
      bad_signature[bad_signature.size() - 5] == 'A' ? 'B' : 'A';
  const warrant::Claims revoked_claims = GoodClaims();
  std::ofstream(world_->dir->path() / "revoked.txt", std::ios::app)
      << nlohmann::json{{"iss", revoked_claims.iss}, {"jti", revoked_claims.jti}}.dump() << "\n";
  auto other_issuer_token = [&] {
    warrant::Claims claims = GoodClaims();
    claims.iss = kOtherIssuer;  // signed with kIssuer's key: the kid belongs to another issuer
    return Issue(*world_, claims);
  }();
  auto untrusted = claims_with([](warrant::Claims& c) { c.iss = "nobody-we-know"; });

  struct Case {
    std::string name;
    std::string token;
    v1::SearchRequest request;
    grpc::StatusCode code;
    std::string refusal;
  };
  const v1::SearchRequest one = Request(0, 1);
  std::vector<Case> cases = {
      {"missing token", "", one, grpc::StatusCode::UNAUTHENTICATED, "missing_token"},
      {"malformed", "not-a-jws", one, grpc::StatusCode::UNAUTHENTICATED, "malformed_token"},
      {"oversized", std::string(3000, 'a') + "." + std::string(10, 'b') + ".c", one,
       grpc::StatusCode::UNAUTHENTICATED, "oversized_token"},
      {"alg none",
       sign(R"({"alg":"none","typ":"JWT","kid":"test-key-1"})", payload_with([](auto&) {})), one,
       grpc::StatusCode::UNAUTHENTICATED, "algorithm_not_allowed"},
      {"alg HS256",
       sign(R"({"alg":"HS256","typ":"JWT","kid":"test-key-1"})", payload_with([](auto&) {})), one,
       grpc::StatusCode::UNAUTHENTICATED, "algorithm_not_allowed"},
      {"unknown kid",
       sign(R"({"alg":"EdDSA","typ":"JWT","kid":"who-is-this"})", payload_with([](auto&) {})), one,
       grpc::StatusCode::UNAUTHENTICATED, "unknown_key"},
      {"key of another issuer", other_issuer_token, one, grpc::StatusCode::UNAUTHENTICATED,
       "key_issuer_mismatch"},
      {"untrusted issuer", untrusted, one, grpc::StatusCode::UNAUTHENTICATED, "untrusted_issuer"},
      {"bad signature", bad_signature, one, grpc::StatusCode::UNAUTHENTICATED, "bad_signature"},
      {"missing claim", sign(good_header, payload_with([](auto& p) { p.erase("jti"); })), one,
       grpc::StatusCode::UNAUTHENTICATED, "missing_claim"},
      {"invalid claim", sign(good_header, payload_with([](auto& p) { p["max_k"] = "many"; })), one,
       grpc::StatusCode::UNAUTHENTICATED, "invalid_claim"},
      {"expired", claims_with([&](auto& c) {
         c.iat = c.nbf = now - 7200;
         c.exp = now - 3600;
       }),
       one, grpc::StatusCode::UNAUTHENTICATED, "expired"},
      {"not yet valid", claims_with([&](auto& c) {
         c.nbf = now + 3600;
         c.exp = now + 7200;
       }),
       one, grpc::StatusCode::UNAUTHENTICATED, "not_yet_valid"},
      {"lifetime over policy", claims_with([&](auto& c) { c.exp = now + 90 * 24 * 3600; }), one,
       grpc::StatusCode::UNAUTHENTICATED, "lifetime_over_policy"},
      {"wrong audience", claims_with([](auto& c) { c.aud = "another-deployment"; }), one,
       grpc::StatusCode::UNAUTHENTICATED, "wrong_audience"},
      {"revoked", Issue(*world_, revoked_claims), one, grpc::StatusCode::PERMISSION_DENIED,
       "revoked"},
      {"collection out of scope", claims_with([](auto& c) { c.collections = {"other"}; }), one,
       grpc::StatusCode::PERMISSION_DENIED, "collection_out_of_scope"},
      {"k over max", good, Request(0, 1, 50), grpc::StatusCode::PERMISSION_DENIED, "k_over_max"},
      {"budget exhausted", claims_with([](auto& c) { c.max_queries = 2; }), Request(0, 3),
       grpc::StatusCode::PERMISSION_DENIED, "budget_exhausted"},
  };

  // The revocation list changed on disk: the operator reloads keys and revocations.
  {
    grpc::ClientContext context;
    Authorize(context, kOperatorToken);
    v1::ReloadKeysRequest request;
    request.set_reason("revocation of a warrant");
    v1::ReloadKeysResponse response;
    ASSERT_TRUE(clients_->admin->ReloadKeys(&context, request, &response).ok());
  }

  const uint64_t searches_before = server_->counters().shards.searches_run.load();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::SearchResponse response;
    std::optional<uint64_t> ledger_index;
    grpc::Status status = Search(c.token, c.request, &response, &ledger_index);
    EXPECT_EQ(status.error_code(), c.code) << status.error_message();
    EXPECT_EQ(status.error_message().rfind(c.refusal + ":", 0), 0u) << status.error_message();
    EXPECT_EQ(response.results_size(), 0);
    ASSERT_TRUE(ledger_index.has_value());
    const v1::LedgerEntry entry = Entry(*ledger_index);
    EXPECT_EQ(entry.kind(), v1::ENTRY_KIND_REFUSAL);
    EXPECT_EQ(entry.outcome(), v1::OUTCOME_REFUSED);
    EXPECT_EQ(entry.refusal().code(), c.refusal);
    EXPECT_EQ(entry.query_count(), 0u);
    for (const v1::QueryRecord& query : entry.queries()) EXPECT_EQ(query.candidates_size(), 0);
  }
  EXPECT_EQ(server_->counters().shards.searches_run.load(), searches_before);
  EXPECT_EQ(Stats().shard_searches_run(), searches_before);
  EXPECT_EQ(Stats().refusals(), cases.size());

  // The same warrant that k_over_max refused still searches within its limits.
  v1::SearchResponse response;
  ASSERT_TRUE(Search(good, Request(0, 1), &response, nullptr).ok());
  EXPECT_EQ(server_->counters().shards.searches_run.load(), searches_before + 3);
}

TEST_F(EmbeddedServiceTest, LedgerAppendFailureReturnsAnErrorAndNoCandidates) {
  ledger::Options options;
  options.dir = Resolve(config_, config_.ledger.dir);
  options.origin = config_.ledger.origin;
  options.signing_key = Resolve(config_, config_.ledger.signing_key);
  options.fsync = false;
  server_.reset();
  auto inner = ledger::Ledger::Open(options);
  ASSERT_TRUE(inner.ok()) << inner.status();
  auto failing = std::make_unique<FailingLedger>(std::move(*inner));
  FailingLedger* ledger = failing.get();
  StartServer({std::move(failing)});

  warrant::Claims claims = GoodClaims();
  claims.max_queries = 2;
  const std::string token = Issue(*world_, claims);
  ledger->fail = true;
  const uint64_t size_before = ledger->Size();
  v1::SearchResponse response;
  grpc::Status status = Search(token, Request(0, 2), &response, nullptr);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_NE(status.error_message().find("ledger"), std::string::npos);
  EXPECT_EQ(response.results_size(), 0);
  EXPECT_FALSE(response.has_receipt());
  EXPECT_EQ(ledger->Size(), size_before);

  // The unrecorded search was not charged: the whole budget is still there.
  ledger->fail = false;
  status = Search(token, Request(0, 2), &response, nullptr);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.results_size(), 2);
}

TEST_F(EmbeddedServiceTest, BudgetIsRestoredFromTheLedgerAfterRestart) {
  warrant::Claims claims = GoodClaims();
  claims.max_queries = 3;
  const std::string token = Issue(*world_, claims);
  v1::SearchResponse response;
  ASSERT_TRUE(Search(token, Request(0, 2), &response, nullptr).ok());
  StartServer();  // same data directory and ledger
  grpc::Status status = Search(token, Request(0, 2), &response, nullptr);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(status.error_message().rfind("budget_exhausted:", 0), 0u) << status.error_message();
  EXPECT_TRUE(Search(token, Request(0, 1), &response, nullptr).ok());
}

TEST_F(EmbeddedServiceTest, RolesAreNeverMixed) {
  const std::string warrant_token = Issue(*world_, GoodClaims());
  auto stats_with = [&](const std::string& token) {
    grpc::ClientContext context;
    if (!token.empty()) Authorize(context, token);
    v1::StatsResponse stats;
    return clients_->admin->Stats(&context, v1::StatsRequest(), &stats).error_code();
  };
  auto checkpoint_with = [&](const std::string& token) {
    grpc::ClientContext context;
    if (!token.empty()) Authorize(context, token);
    v1::GetCheckpointResponse checkpoint;
    return clients_->ledger->GetCheckpoint(&context, v1::GetCheckpointRequest(), &checkpoint)
        .error_code();
  };
  EXPECT_EQ(stats_with(kOperatorToken), grpc::StatusCode::OK);
  EXPECT_EQ(stats_with(kAuditorToken), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(stats_with(warrant_token), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(stats_with(""), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(checkpoint_with(kAuditorToken), grpc::StatusCode::OK);
  EXPECT_EQ(checkpoint_with(kOperatorToken), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(checkpoint_with(warrant_token), grpc::StatusCode::PERMISSION_DENIED);

  v1::SearchResponse response;
  for (const char* credential : {kOperatorToken, kAuditorToken}) {
    grpc::Status status = Search(credential, Request(0, 1), &response, nullptr);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
}

// The in-process channel skips the transport, not the checks: no warrant, no search; the wrong
// role, no admin call; and every answer and refusal on it is in the ledger like any other.
TEST_F(EmbeddedServiceTest, TheInProcessChannelPassesTheSameChecksAndLedger) {
  Clients in_process(server_->InProcessChannel(grpc::ChannelArguments()));
  const uint64_t size_before = Stats().ledger_size();
  const std::string token = Issue(*world_, GoodClaims());

  v1::SearchResponse answered;
  std::optional<uint64_t> answered_index;
  ASSERT_TRUE(SearchAsGrpcStatus(in_process.search, token, Request(0, 2), absl::InfiniteDuration(),
                                 &answered, &answered_index)
                  .ok());
  ASSERT_EQ(answered.results_size(), 2);
  EXPECT_GT(answered.results(0).candidates_size(), 0);
  // The same answer as over the network.
  v1::SearchResponse over_network;
  ASSERT_TRUE(Search(token, Request(0, 2), &over_network, nullptr).ok());
  for (int q = 0; q < 2; ++q) {
    ASSERT_EQ(answered.results(q).candidates_size(), over_network.results(q).candidates_size());
    for (int r = 0; r < answered.results(q).candidates_size(); ++r) {
      EXPECT_EQ(answered.results(q).candidates(r).id(), over_network.results(q).candidates(r).id());
    }
  }

  v1::SearchResponse refused;
  std::optional<uint64_t> refused_index;
  const grpc::Status no_warrant = SearchAsGrpcStatus(
      in_process.search, "", Request(0, 1), absl::InfiniteDuration(), &refused, &refused_index);
  EXPECT_EQ(no_warrant.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(refused.results_size(), 0);

  ASSERT_TRUE(answered_index.has_value());
  EXPECT_EQ(Entry(*answered_index).outcome(), v1::OUTCOME_ANSWERED);
  ASSERT_TRUE(refused_index.has_value());
  EXPECT_EQ(Entry(*refused_index).kind(), v1::ENTRY_KIND_REFUSAL);
  EXPECT_EQ(Entry(*refused_index).outcome(), v1::OUTCOME_REFUSED);
  // The in-process answer, the network answer and the refusal, and nothing left out.
  EXPECT_EQ(Stats().ledger_size(), size_before + 3);

  grpc::ClientContext context;
  Authorize(context, kAuditorToken);
  v1::StatsResponse stats;
  EXPECT_EQ(in_process.admin->Stats(&context, v1::StatsRequest(), &stats).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(EmbeddedServiceTest, ErasureTakesEffectAtOnceSurvivesRestartAndIsAnAdminEntry) {
  const std::string token = Issue(*world_, GoodClaims());
  v1::SearchResponse before;
  ASSERT_TRUE(Search(token, Request(3, 1), &before, nullptr).ok());
  ASSERT_GT(before.results(0).candidates_size(), 1);
  const int64_t victim = before.results(0).candidates(0).id();

  grpc::ClientContext context;
  Authorize(context, kOperatorToken);
  v1::EraseRequest erase;
  erase.set_collection(kCollection);
  erase.add_ids(victim);
  erase.set_reason("court order 2026/17");
  v1::EraseResponse erased;
  grpc::Status status = clients_->admin->Erase(&context, erase, &erased);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(erased.removed(), 1);
  const v1::LedgerEntry entry = Entry(erased.ledger_index());
  EXPECT_EQ(entry.kind(), v1::ENTRY_KIND_ADMIN);
  EXPECT_EQ(entry.admin().action(), "erase");
  EXPECT_EQ(entry.admin().operator_(), "test-operator");
  EXPECT_EQ(entry.admin().reason(), "court order 2026/17");
  ASSERT_EQ(entry.admin().ids_size(), 1);
  EXPECT_EQ(entry.admin().ids(0), victim);

  auto contains_victim = [&] {
    v1::SearchResponse after;
    EXPECT_TRUE(Search(token, Request(3, 1), &after, nullptr).ok());
    for (const auto& c : after.results(0).candidates()) {
      if (c.id() == victim) return true;
    }
    return false;
  };
  EXPECT_FALSE(contains_victim());
  StartServer();
  EXPECT_FALSE(contains_victim());
}

TEST_F(EmbeddedServiceTest, AddVectorsAndGenerationSwapsAreAdminEntriesAndPersist) {
  const std::string token = Issue(*world_, GoodClaims());
  // New vectors: exact copies of two query vectors, so each is its query's best match.
  grpc::ClientContext add_context;
  Authorize(add_context, kOperatorToken);
  v1::AddVectorsResponse added;
  auto writer = clients_->admin->AddVectors(&add_context, &added);
  for (int q = 0; q < 2; ++q) {
    v1::AddVectorsRequest message;
    message.set_collection(kCollection);
    message.set_dim(world_->gallery.dim);
    message.set_reason("new enrolments");
    const float* begin = world_->gallery.queries.data() + q * world_->gallery.dim;
    message.mutable_vectors()->Add(begin, begin + world_->gallery.dim);
    message.add_ids(900000 + q);
    ASSERT_TRUE(writer->Write(message));
  }
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(added.added(), 2);
  EXPECT_EQ(Entry(added.ledger_index()).admin().action(), "add");

  auto best_of_query = [&](int q) {
    v1::SearchResponse response;
    EXPECT_TRUE(Search(token, Request(q, 1), &response, nullptr).ok());
    return response.results(0).candidates(0).id();
  };
  EXPECT_EQ(best_of_query(0), 900000);
  EXPECT_EQ(best_of_query(1), 900001);
  StartServer();  // the additions were written as generation 2 and survive a restart
  EXPECT_EQ(best_of_query(1), 900001);

  // Swap back to generation 1 (a rollback): the additions are gone, and it is on record.
  grpc::ClientContext swap_context;
  Authorize(swap_context, kOperatorToken);
  v1::LoadGenerationRequest swap;
  swap.set_collection(kCollection);
  swap.set_generation_dir(world_->generation_dir.string());
  swap.set_reason("rollback");
  v1::LoadGenerationResponse swapped;
  status = clients_->admin->LoadGeneration(&swap_context, swap, &swapped);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(swapped.previous_generation(), "2");
  EXPECT_EQ(swapped.index_generation(), "1");
  const v1::LedgerEntry entry = Entry(swapped.ledger_index());
  EXPECT_EQ(entry.admin().action(), "swap_generation");
  EXPECT_EQ(entry.admin().reason(), "rollback");
  EXPECT_NE(best_of_query(0), 900000);
  StartServer();
  EXPECT_NE(best_of_query(0), 900000);

  // Every answer since names the generation it came from.
  v1::SearchResponse response;
  ASSERT_TRUE(Search(token, Request(0, 1), &response, nullptr).ok());
  EXPECT_EQ(response.index_generation(), "1");
}

TEST_F(EmbeddedServiceTest, AuditorGetsConsistentCheckpointsOverTime) {
  const std::string token = Issue(*world_, GoodClaims());
  v1::SearchResponse response;
  ASSERT_TRUE(Search(token, Request(0, 1), &response, nullptr).ok());
  auto checkpoint = [&] {
    grpc::ClientContext context;
    Authorize(context, kAuditorToken);
    v1::GetCheckpointResponse out;
    EXPECT_TRUE(clients_->ledger->GetCheckpoint(&context, v1::GetCheckpointRequest(), &out).ok());
    auto verifier = ledger::NoteVerifier::FromVerifierKey(out.verifier_key());
    EXPECT_TRUE(verifier.ok());
    auto opened = ledger::OpenSignedCheckpoint(out.signed_checkpoint(), *verifier);
    EXPECT_TRUE(opened.ok()) << opened.status();
    return *opened;
  };
  const ledger::Checkpoint old_checkpoint = checkpoint();
  for (int i = 1; i < 4; ++i) ASSERT_TRUE(Search(token, Request(i, 1), &response, nullptr).ok());
  const ledger::Checkpoint new_checkpoint = checkpoint();
  ASSERT_EQ(new_checkpoint.size, old_checkpoint.size + 3);

  grpc::ClientContext context;
  Authorize(context, kAuditorToken);
  v1::GetConsistencyProofRequest request;
  request.set_old_size(old_checkpoint.size);
  request.set_new_size(new_checkpoint.size);
  v1::GetConsistencyProofResponse proof;
  ASSERT_TRUE(clients_->ledger->GetConsistencyProof(&context, request, &proof).ok());
  std::vector<ledger::Hash> hashes;
  for (const std::string& h : proof.hashes()) {
    ledger::Hash hash;
    ASSERT_EQ(h.size(), hash.size());
    std::copy(h.begin(), h.end(), hash.begin());
    hashes.push_back(hash);
  }
  EXPECT_TRUE(ledger::VerifyConsistency(old_checkpoint.size, new_checkpoint.size,
                                        old_checkpoint.root, new_checkpoint.root, hashes)
                  .ok());
}

// Without a warrant a caller decides nothing of an entry's size: no per-vector data, the
// justification, collection and message cut to bounded prefixes.
TEST_F(EmbeddedServiceTest, RefusalsWithoutAVerifiedWarrantLeaveSmallEntries) {
  const std::string long_kid(900, 'k');
  const std::string unknown_kid_token = [&] {
    auto token = warrant::SignCompactJws(R"({"alg":"EdDSA","typ":"JWT","kid":")" + long_kid + "\"}",
                                         warrant::ClaimsToJson(GoodClaims()), *world_->issuer_key);
    EXPECT_TRUE(token.ok());
    return *token;
  }();
  v1::SearchRequest long_justification = Request(0, 1);
  long_justification.set_justification(std::string(200 << 10, 'j'));
  v1::SearchRequest many_vectors = Request(0, 1);
  for (int q = 1; q < 1000; ++q) *many_vectors.add_queries() = many_vectors.queries(0);
  v1::SearchRequest long_collection = Request(0, 1);
  long_collection.set_collection(std::string(100 << 10, 'c'));

  struct Case {
    std::string name, token;
    v1::SearchRequest request;
    std::string refusal;
  };
  v1::LedgerEntry justification_entry;
  for (const Case& c :
       std::vector<Case>{{"justification", "", long_justification, "missing_token"},
                         {"vectors", "", many_vectors, "missing_token"},
                         {"collection", "not-a-jws", long_collection, "malformed_token"},
                         {"kid", unknown_kid_token, Request(0, 1), "unknown_key"}}) {
    SCOPED_TRACE(c.name);
    v1::SearchResponse response;
    std::optional<uint64_t> index;
    grpc::Status status = Search(c.token, c.request, &response, &index);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << status.error_message();
    ASSERT_TRUE(index.has_value());
    const v1::LedgerEntry entry = Entry(*index);
    EXPECT_EQ(entry.refusal().code(), c.refusal);
    EXPECT_LE(entry.ByteSizeLong(), static_cast<size_t>(config_.max_justification_bytes) + 4096);
    EXPECT_EQ(entry.queries_size(), 0);
    EXPECT_TRUE(entry.queries_sha256().empty());
    EXPECT_EQ(entry.queries_received(), static_cast<uint32_t>(c.request.queries_size()));
    // The token that was sent, by its hash (none sent: none recorded).
    EXPECT_EQ(entry.warrant_sha256(), c.token.empty() ? "" : common::Sha256Bytes(c.token));
    if (c.name == "justification") justification_entry = entry;
  }
  EXPECT_NE(justification_entry.justification().find(
                "[cut: 204800 bytes in all, SHA-256 " +
                common::Sha256Hex(long_justification.justification())),
            std::string::npos);
}

TEST_F(EmbeddedServiceTest, MessagesOverTheLargestLegitimateRequestNeverReachTheLedger) {
  const uint64_t size_before = Stats().ledger_size();
  v1::SearchRequest huge = Request(0, 1);
  huge.set_justification(std::string(1 << 20, 'j'));  // far past the 2 KiB cap
  v1::SearchResponse response;
  grpc::Status status = Search("", huge, &response, nullptr);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_EQ(Stats().ledger_size(), size_before);
  // The largest legitimate batch still gets through.
  warrant::Claims claims = GoodClaims();
  claims.max_queries = config_.max_queries_per_request;
  v1::SearchRequest largest = Request(0, 1);
  largest.set_justification(std::string(config_.max_justification_bytes, 'j'));
  for (int q = 1; q < config_.max_queries_per_request; ++q) {
    *largest.add_queries() = largest.queries(0);
  }
  status = Search(Issue(*world_, claims), largest, &response, nullptr);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.results_size(), config_.max_queries_per_request);
}

// Every field is checked before the warrant's budget is reserved: a warrant for one query
// vector still has it after every one of these refusals, and no shard searched.
TEST_F(EmbeddedServiceTest, InvalidRequestsAreRefusedBeforeTheBudgetIsTouched) {
  warrant::Claims claims = GoodClaims();
  claims.max_queries = 1;
  claims.collections = {kCollection, "not-served-here"};
  const std::string token = Issue(*world_, claims);
  auto with = [&](const std::function<void(v1::SearchRequest&)>& edit) {
    v1::SearchRequest request = Request(0, 1);
    edit(request);
    return request;
  };
  struct Case {
    std::string name;
    v1::SearchRequest request;
    grpc::StatusCode code;
    std::string refusal;
  };
  const auto invalid = grpc::StatusCode::INVALID_ARGUMENT;
  const std::vector<Case> cases = {
      {"NaN value", with([](auto& r) { r.mutable_queries(0)->set_values(3, std::nanf("")); }),
       invalid, "invalid_request"},
      {"infinite value", with([](auto& r) {
         r.mutable_queries(0)->set_values(0, std::numeric_limits<float>::infinity());
       }),
       invalid, "invalid_request"},
      {"nprobe over int", with([](auto& r) { r.set_nprobe(3'000'000'000u); }), invalid,
       "invalid_request"},
      {"nprobe over the bound", with([](auto& r) { r.set_nprobe(kMaxNprobe + 1); }), invalid,
       "invalid_request"},
      {"min_score NaN", with([](auto& r) { r.set_min_score(std::nanf("")); }), invalid,
       "invalid_request"},
      {"min_score infinite",
       with([](auto& r) { r.set_min_score(-std::numeric_limits<float>::infinity()); }), invalid,
       "invalid_request"},
      {"k zero", with([](auto& r) { r.set_k(0); }), invalid, "invalid_request"},
      {"k over the bound", with([](auto& r) { r.set_k(kMaxK + 1); }), invalid, "invalid_request"},
      {"no queries", with([](auto& r) { r.clear_queries(); }), invalid, "invalid_request"},
      {"justification over the cap", with([&](auto& r) {
         r.set_justification(std::string(config_.max_justification_bytes + 1, 'j'));
       }),
       invalid, "invalid_request"},
      {"too many queries", with([&](auto& r) {
         for (int q = 0; q < config_.max_queries_per_request; ++q) {
           *r.add_queries() = r.queries(0);
         }
       }),
       invalid, "invalid_request"},
      {"wrong dimension",
       with([](auto& r) { r.mutable_queries(0)->mutable_values()->RemoveLast(); }), invalid,
       "invalid_request"},
      {"unknown collection", with([](auto& r) { r.set_collection("not-served-here"); }),
       grpc::StatusCode::NOT_FOUND, "unknown_collection"},
  };
  const uint64_t searches_before = server_->counters().shards.searches_run.load();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::SearchResponse response;
    std::optional<uint64_t> index;
    grpc::Status status = Search(token, c.request, &response, &index);
    EXPECT_EQ(status.error_code(), c.code) << status.error_message();
    EXPECT_EQ(status.error_message().rfind(c.refusal + ":", 0), 0u) << status.error_message();
    ASSERT_TRUE(index.has_value());
    const v1::LedgerEntry entry = Entry(*index);
    EXPECT_EQ(entry.kind(), v1::ENTRY_KIND_REFUSAL);
    EXPECT_EQ(entry.refusal().code(), c.refusal);
    EXPECT_EQ(entry.warrant_id(), claims.jti);
    EXPECT_LE(entry.justification().size(), static_cast<size_t>(config_.max_justification_bytes));
  }
  EXPECT_EQ(server_->counters().shards.searches_run.load(), searches_before);
  v1::SearchResponse response;
  grpc::Status status = Search(token, Request(0, 1), &response, nullptr);
  ASSERT_TRUE(status.ok()) << status.error_message();
  status = Search(token, Request(1, 1), &response, nullptr);
  EXPECT_EQ(status.error_message().rfind("budget_exhausted:", 0), 0u) << status.error_message();
}

// A verified warrant's refusal is always on record, however many vectors the request carried:
// one hash per vector up to the per-request maximum, one digest over all of them beyond.
TEST_F(EmbeddedServiceTest, AVerifiedWarrantsRefusalOfAHugeBatchIsRecordedWithOneDigest) {
  warrant::Claims claims = GoodClaims();
  claims.collections = {"another-collection"};
  const std::string token = Issue(*world_, claims);
  v1::SearchRequest probe;
  probe.set_collection(kCollection);
  probe.set_k(1);
  const int count = 5 * config_.max_queries_per_request;
  for (int q = 0; q < count; ++q) probe.add_queries();  // empty vectors: 2 bytes each
  v1::SearchResponse response;
  std::optional<uint64_t> index;
  grpc::Status status = Search(token, probe, &response, &index);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  ASSERT_TRUE(index.has_value());
  v1::LedgerEntry entry = Entry(*index);
  EXPECT_EQ(entry.warrant_id(), claims.jti);
  EXPECT_EQ(entry.queries_received(), static_cast<uint32_t>(count));
  EXPECT_EQ(entry.queries_size(), 0);
  EXPECT_EQ(entry.queries_sha256(), QueriesSha256(probe));
  EXPECT_LT(entry.ByteSizeLong(), 4096u);

  probe.mutable_queries()->DeleteSubrange(10, count - 10);
  index.reset();
  status = Search(token, probe, &response, &index);
  EXPECT_EQ(status.error_message().rfind("collection_out_of_scope:", 0), 0u)
      << status.error_message();
  ASSERT_TRUE(index.has_value());
  entry = Entry(*index);
  EXPECT_EQ(entry.queries_received(), 10u);
  EXPECT_EQ(entry.queries_size(), 10);
  EXPECT_EQ(entry.queries(0).vector_sha256(), common::Sha256Bytes(""));
}

TEST_F(EmbeddedServiceTest, AnonymousJunkCannotCrowdOutAVerifiedWarrantsRefusals) {
  config_.refusal_rate_per_second = 0.2;  // burst of 1, then one per 5 s
  config_.refusal_rate_per_caller_per_second = 0.2;
  StartServer();
  v1::SearchResponse response;
  std::optional<uint64_t> index;
  ASSERT_EQ(Search("", Request(0, 1), &response, &index).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(index.has_value());
  for (int i = 0; i < 4; ++i) {
    index.reset();
    Search("junk", Request(0, 1), &response, &index);
    EXPECT_FALSE(index.has_value());  // this caller's refusals are over its limit
  }
  warrant::Claims claims = GoodClaims();
  claims.collections = {"another-collection"};
  const std::string token = Issue(*world_, claims);
  for (int i = 0; i < 3; ++i) {
    index.reset();
    grpc::Status status = Search(token, Request(0, 1), &response, &index);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    ASSERT_TRUE(index.has_value()) << "probe " << i << " was not recorded";
    EXPECT_EQ(Entry(*index).refusal().code(), "collection_out_of_scope");
    EXPECT_EQ(Entry(*index).warrant_id(), claims.jti);
  }
  EXPECT_EQ(Stats().refusals_not_recorded(), 4u);
}

// Two issuers that pick the same jti have two warrants: one's searches, restart and revocation
// leave the other's budget and validity alone.
TEST_F(EmbeddedServiceTest, IssuersShareNeitherBudgetsNorRevocations) {
  warrant::Claims claims_a = GoodClaims();
  claims_a.max_queries = 2;
  warrant::Claims claims_b = claims_a;  // the same jti
  claims_b.iss = kOtherIssuer;
  const std::string token_a = Issue(*world_, claims_a);
  auto token_b = warrant::IssueToken(claims_b, *world_->other_issuer_key, kOtherKid);
  ASSERT_TRUE(token_b.ok()) << token_b.status();
  v1::SearchResponse response;
  ASSERT_TRUE(Search(token_a, Request(0, 2), &response, nullptr).ok());
  grpc::Status status = Search(*token_b, Request(0, 1), &response, nullptr);
  ASSERT_TRUE(status.ok()) << status.error_message();
  StartServer();  // budgets rebuilt from the ledger, per issuer and jti
  EXPECT_EQ(Search(token_a, Request(0, 1), &response, nullptr)
                .error_message()
                .rfind("budget_exhausted:", 0),
            0u);
  status = Search(*token_b, Request(1, 1), &response, nullptr);
  ASSERT_TRUE(status.ok()) << status.error_message();

  claims_a.jti = claims_b.jti = *warrant::RandomJti();
  const std::string fresh_a = Issue(*world_, claims_a);
  auto fresh_b = warrant::IssueToken(claims_b, *world_->other_issuer_key, kOtherKid);
  ASSERT_TRUE(fresh_b.ok());
  std::ofstream(world_->dir->path() / "revoked.txt", std::ios::app)
      << nlohmann::json{{"iss", kIssuer}, {"jti", claims_a.jti}}.dump() << "\n";
  StartServer();  // reads the revocation list afresh
  status = Search(fresh_a, Request(0, 1), &response, nullptr);
  EXPECT_EQ(status.error_message().rfind("revoked:", 0), 0u) << status.error_message();
  status = Search(*fresh_b, Request(0, 1), &response, nullptr);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

}  // namespace
}  // namespace probity::service::testing
