// The steps every call under a warrant shares (warranted_call.h): a warrant refusal's status
// (UNAUTHENTICATED for the token, PERMISSION_DENIED for the scope), a call without a token
// refused before anything is trusted, and a refusal recorded as a bounded REFUSAL entry before
// the caller gets "<code>: <message>".
#include "probity/service/warranted_call.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "common/scoped_temp_dir.h"
#include "fake_ledger.h"
#include "probity/service/search_entry.h"
#include "probity/warrant/ed25519.h"
#include "probity/warrant/issue.h"
#include "probity/warrant/verifier.h"

namespace probity::service::testing {
namespace {

TEST(WarrantedCallTest, TokenRefusalsAreUnauthenticatedAndScopeRefusalsPermissionDenied) {
  const CallRefusal missing = RefusalOf({warrant::RefusalCode::kMissingToken, "no token"});
  EXPECT_EQ(missing.status, grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(missing.code, "missing_token");
  EXPECT_EQ(missing.message, "no token");
  const CallRefusal k = RefusalOf({warrant::RefusalCode::kKOverMax, "k 99 over 10"});
  EXPECT_EQ(k.status, grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(k.code, "k_over_max");
}

TEST(WarrantedCallTest, ACallWithoutATokenIsRefusedAndNothingOfAWarrantIsRecorded) {
  test_support::ScopedTempDir dir;
  auto key = warrant::Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok()) << key.status();
  std::ofstream(dir.path() / "jwks.json")
      << *warrant::AppendToJwks("", *warrant::PublicJwk(*key, "kid-1", "https://issuer.test"));
  warrant::Verifier::Options options;
  options.policy.audience = "probity-test";
  options.jwks_file = dir.path() / "jwks.json";
  auto verifier = warrant::Verifier::Create(options);
  ASSERT_TRUE(verifier.ok()) << verifier.status();

  grpc::ServerContext context;  // no call: no metadata, so no bearer token
  v1::LedgerEntry entry;
  RefusalSource source{"peer:ipv4:127.0.0.1", false};
  const auto verified = VerifyCallWarrant(**verifier, context, entry, source);
  const auto* refusal = std::get_if<CallRefusal>(&verified);
  ASSERT_NE(refusal, nullptr);
  EXPECT_EQ(refusal->status, grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(refusal->code, "missing_token");
  EXPECT_FALSE(source.warrant_verified);
  EXPECT_TRUE(entry.warrant_sha256().empty());
  EXPECT_TRUE(entry.warrant_id().empty());
}

TEST(WarrantedCallTest, ARefusalIsABoundedRefusalEntryBeforeTheCallerIsAnswered) {
  FakeLedger ledger;
  AuditLog audit(ledger, 100);
  grpc::ServerContext context;
  v1::LedgerEntry entry;
  entry.set_justification("lead 17");
  const std::string long_message(5000, 'm');
  const CallRefusal refusal{grpc::StatusCode::INVALID_ARGUMENT, "invalid_request", long_message};
  MarkRefused(refusal, entry);
  const grpc::Status status =
      RecordRefusal(audit, context, entry, {"tls:investigator-1", true}, refusal, "refusal");

  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "invalid_request: " + long_message);
  ASSERT_EQ(ledger.Size(), 1u);
  v1::LedgerEntry recorded;
  ASSERT_TRUE(recorded.ParseFromString(*ledger.ReadEntry(0)));
  EXPECT_EQ(recorded.kind(), v1::ENTRY_KIND_REFUSAL);
  EXPECT_EQ(recorded.outcome(), v1::OUTCOME_REFUSED);
  EXPECT_EQ(recorded.refusal().code(), "invalid_request");
  EXPECT_EQ(recorded.refusal().message(), BoundedText(long_message, kMaxRecordedMessageBytes));
  EXPECT_LT(recorded.refusal().message().size(), kMaxRecordedMessageBytes);
  EXPECT_EQ(recorded.justification(), "lead 17");
}

}  // namespace
}  // namespace probity::service::testing
