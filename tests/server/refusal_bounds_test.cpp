// The bounds of the Search path without a network: per-caller refusal limits, who a caller is,
// how refusal entries are kept small, and the gRPC receive limit.
#include <gtest/gtest.h>

#include <limits>

#include "probity/common/sha256.h"
#include "probity/service/auth.h"
#include "probity/service/refusal_limiter.h"
#include "probity/service/search_entry.h"
#include "probity/service/search_service.h"

namespace probity::service::testing {
namespace {

// A clock the test moves by hand, so that refills happen exactly when the test says.
struct ManualClock {
  absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  RefusalLimiter::Clock AsClock() {
    return [this] { return now; };
  }
};

TEST(RefusalLimiterTest, OneCallersJunkLeavesTheOthersTheirShare) {
  ManualClock clock;
  // Per caller: burst 5, one per second; total: burst 50.
  RefusalLimiter limiter({/*total=*/10, /*per_caller=*/1, /*callers_tracked=*/16}, clock.AsClock());
  int junk = 0;
  while (limiter.TryTake("ip:198.51.100.7")) ++junk;
  EXPECT_EQ(junk, 5);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(limiter.TryTake("ip:203.0.113.9")) << i;
  EXPECT_FALSE(limiter.TryTake("ip:203.0.113.9"));
  clock.now += absl::Seconds(1);
  EXPECT_TRUE(limiter.TryTake("ip:198.51.100.7"));
  EXPECT_FALSE(limiter.TryTake("ip:198.51.100.7"));
}

TEST(RefusalLimiterTest, ManyCallersTogetherStopAtTheTotal) {
  ManualClock clock;
  RefusalLimiter limiter({/*total=*/2, /*per_caller=*/1, /*callers_tracked=*/64}, clock.AsClock());
  int recorded = 0;
  for (int caller = 0; caller < 40; ++caller) {
    if (limiter.TryTake("ip:10.0.0." + std::to_string(caller))) ++recorded;
  }
  EXPECT_EQ(recorded, 10);  // the total's burst: 5 s worth of 2 per second
}

TEST(RefusalLimiterTest, TrackedCallersAreBoundedAndIdleOnesAreForgotten) {
  ManualClock clock;
  RefusalLimiter limiter({/*total=*/1000, /*per_caller=*/1, /*callers_tracked=*/3},
                         clock.AsClock());
  for (int caller = 0; caller < 3; ++caller) {
    while (limiter.TryTake("tls:caller-" + std::to_string(caller))) {
    }
  }
  EXPECT_EQ(limiter.callers_tracked(), 3u);
  // The table is full of active callers: newcomers share one bucket (burst 5) and add nothing.
  int shared = 0;
  for (int caller = 3; caller < 50; ++caller) {
    if (limiter.TryTake("tls:caller-" + std::to_string(caller))) ++shared;
  }
  EXPECT_EQ(shared, 5);
  EXPECT_EQ(limiter.callers_tracked(), 3u);
  // Once a tracked caller's bucket has filled up again, its place goes to a newcomer.
  clock.now += absl::Seconds(5);
  EXPECT_TRUE(limiter.TryTake("tls:newcomer"));
  EXPECT_EQ(limiter.callers_tracked(), 3u);
}

TEST(CallerKeyTest, IdentityFirstThenTheAddressWithoutItsPort) {
  EXPECT_EQ(CallerKey(std::string("investigator-7"), "ipv4:10.1.2.3:5555"), "tls:investigator-7");
  EXPECT_EQ(CallerKey(std::nullopt, "ipv4:10.1.2.3:5555"), "ip:10.1.2.3");
  EXPECT_EQ(CallerKey(std::nullopt, "ipv4:10.1.2.3:6666"), "ip:10.1.2.3");
  // IPv6: one /64 is one caller, however its hosts pick their addresses.
  EXPECT_EQ(CallerKey(std::nullopt, "ipv6:[2001:db8:1:2::1]:443"),
            CallerKey(std::nullopt, "ipv6:[2001:db8:1:2:ffff:1:2:3]:80"));
  EXPECT_NE(CallerKey(std::nullopt, "ipv6:[2001:db8:1:2::1]:443"),
            CallerKey(std::nullopt, "ipv6:[2001:db8:1:3::1]:443"));
  EXPECT_EQ(CallerKey(std::nullopt, "ipv6:[::ffff:10.1.2.3]:443"), "ip:10.1.2.3");
  EXPECT_EQ(CallerKey(std::nullopt, "unix:/run/probity.sock"), "unix:/run/probity.sock");
}

TEST(SearchEntryTest, BoundedTextKeepsAShortValidPrefixAndTheHashOfTheWhole) {
  EXPECT_EQ(BoundedText("short", 10), "short");
  // 'é' is two bytes: a cut never splits a character.
  const std::string text = "a" + std::string(3000, '\0') + std::string(200, 'x');
  std::string accented;
  for (int i = 0; i < 2000; ++i) accented += "\xC3\xA9";
  for (const std::string& original : {text, accented}) {
    const std::string bounded = BoundedText(original, 2048);
    EXPECT_LT(bounded.size(), kCutPrefixBytes + 120);
    EXPECT_NE(bounded.find(common::Sha256Hex(original)), std::string::npos) << bounded;
    EXPECT_NE(bounded.find(std::to_string(original.size()) + " bytes in all"), std::string::npos);
  }
  const std::string cut = BoundedText(accented, 2048);
  EXPECT_EQ(cut.substr(0, 256), accented.substr(0, 256));
  EXPECT_EQ(cut[256], ' ');
  EXPECT_EQ(BoundedText(accented, 255).substr(0, 255), accented.substr(0, 254) + " ");
}

v1::SearchRequest Vectors(const std::vector<std::vector<float>>& vectors) {
  v1::SearchRequest request;
  for (const auto& values : vectors) {
    request.add_queries()->mutable_values()->Add(values.begin(), values.end());
  }
  return request;
}

TEST(SearchEntryTest, TheBatchDigestDependsOnEveryVectorAndOnWhereVectorsSplit) {
  const std::string one = QueriesSha256(Vectors({{1, 2}, {3}}));
  EXPECT_EQ(one.size(), 32u);
  EXPECT_EQ(one, QueriesSha256(Vectors({{1, 2}, {3}})));
  EXPECT_NE(one, QueriesSha256(Vectors({{1}, {2, 3}})));
  EXPECT_NE(one, QueriesSha256(Vectors({{1, 2}, {4}})));
  EXPECT_NE(QueriesSha256(Vectors({{}, {}})), QueriesSha256(Vectors({{}})));
}

TEST(SearchEntryTest, ARefusalEntryIsMadeToFitItsCap) {
  v1::SearchRequest request = Vectors(std::vector<std::vector<float>>(5000));
  v1::LedgerEntry entry;
  entry.set_kind(v1::ENTRY_KIND_REFUSAL);
  RecordQueryHashes(request, entry);
  entry.set_justification(std::string(100000, 'j'));
  entry.mutable_refusal()->set_message(std::string(100000, 'm'));
  entry.add_collections(std::string(100000, 'c'));
  entry.mutable_investigator()->set_tls_identity(std::string(100000, 'i'));
  ASSERT_GT(entry.ByteSizeLong(), 400000u);
  ASSERT_TRUE(FitRefusalEntry(request, 4096, entry));
  EXPECT_LE(entry.ByteSizeLong(), 4096u);
  EXPECT_EQ(entry.queries_size(), 0);
  EXPECT_EQ(entry.queries_sha256(), QueriesSha256(request));
  // An entry that fits is left alone.
  v1::LedgerEntry small;
  RecordQueryHashes(Vectors({{1}}), small);
  small.set_justification("case 42");
  const std::string before = small.SerializeAsString();
  EXPECT_TRUE(FitRefusalEntry(Vectors({{1}}), 4096, small));
  EXPECT_EQ(small.SerializeAsString(), before);
}

TEST(MaxSearchMessageBytesTest, TheLargestLegitimateRequestFitsAndTwiceItDoesNot) {
  const int max_queries = 300, dim = 512, justification = 2048;
  v1::SearchRequest request;
  request.set_collection(std::string(200, 'c'));
  request.set_k(kMaxK);
  request.set_nprobe(kMaxNprobe);
  request.set_min_score(-1e30f);
  request.set_allow_partial(true);
  request.set_justification(std::string(justification, 'j'));
  for (int q = 0; q < max_queries; ++q) {
    request.add_queries()->mutable_values()->Resize(dim, 1.5f);
  }
  const size_t limit = MaxSearchMessageBytes(max_queries, dim, justification);
  EXPECT_LE(request.ByteSizeLong(), limit);
  EXPECT_LT(limit, 2 * request.ByteSizeLong());
  EXPECT_EQ(MaxSearchMessageBytes(1 << 20, 1 << 20, 0), std::numeric_limits<int>::max());
}

}  // namespace
}  // namespace probity::service::testing
