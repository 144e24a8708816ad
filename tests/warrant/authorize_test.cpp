// Authorize and BudgetTracker: scope, k, identity and budget of one request.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "test_support.h"

namespace probity::warrant {
namespace {

VerifiedWarrant Warrant() {
  VerifiedWarrant warrant;
  warrant.claims = testing::ValidClaims(absl::FromUnixSeconds(1'800'000'000), "authority-a");
  warrant.kid = "a-2026";
  return warrant;  // collections gallery-a/b, max_k 50, max_queries 10, sub investigator-7
}

Request Ask(std::vector<std::string> collections, int64_t k, int64_t queries) {
  return Request{std::move(collections), k, queries, std::nullopt};
}

const WarrantId kWarrantA{"authority-a", "warrant-0001"};
const WarrantId kW{"authority-a", "w"};
const WarrantId kShared{"authority-a", "shared"};

RefusalCode Refused(const std::optional<Refusal>& refusal) {
  if (!refusal) {
    ADD_FAILURE() << "expected a refusal, the request was authorized";
    return RefusalCode::kMissingToken;
  }
  EXPECT_FALSE(refusal->IsAuthentication()) << refusal->message;
  EXPECT_FALSE(refusal->message.empty());
  return refusal->code;
}

TEST(Authorize, RequestWithinTheWarrantPassesAndSpendsBudget) {
  BudgetTracker budget;
  EXPECT_EQ(Authorize(Warrant(), Ask({"gallery-a", "gallery-b"}, 50, 3), budget), std::nullopt);
  EXPECT_EQ(budget.Used(kWarrantA), 3);
}

TEST(Authorize, CollectionOutOfScope) {
  BudgetTracker budget;
  auto refusal = Authorize(Warrant(), Ask({"gallery-a", "gallery-z"}, 10, 1), budget);
  EXPECT_EQ(Refused(refusal), RefusalCode::kCollectionOutOfScope);
  EXPECT_NE(refusal->message.find("gallery-z"), std::string::npos);
  EXPECT_EQ(Refused(Authorize(Warrant(), Ask({}, 10, 1), budget)),
            RefusalCode::kCollectionOutOfScope);
  EXPECT_EQ(budget.Used(kWarrantA), 0);
}

TEST(Authorize, KOverMaxK) {
  BudgetTracker budget;
  EXPECT_EQ(Refused(Authorize(Warrant(), Ask({"gallery-a"}, 51, 1), budget)),
            RefusalCode::kKOverMax);
  EXPECT_EQ(budget.Used(kWarrantA), 0);
}

TEST(Authorize, BudgetExhaustedCountsQueryVectors) {
  BudgetTracker budget;
  EXPECT_EQ(Authorize(Warrant(), Ask({"gallery-a"}, 5, 7), budget), std::nullopt);
  // 3 left: a batch of 4 is refused whole and reserves nothing.
  EXPECT_EQ(Refused(Authorize(Warrant(), Ask({"gallery-a"}, 5, 4), budget)),
            RefusalCode::kBudgetExhausted);
  EXPECT_EQ(budget.Used(kWarrantA), 7);
  EXPECT_EQ(Authorize(Warrant(), Ask({"gallery-a"}, 5, 3), budget), std::nullopt);
  EXPECT_EQ(Refused(Authorize(Warrant(), Ask({"gallery-a"}, 5, 1), budget)),
            RefusalCode::kBudgetExhausted);
}

TEST(Authorize, BudgetRestoredFromTheLedgerIsNotRefunded) {
  BudgetTracker budget;
  budget.Restore(kWarrantA, 10);
  EXPECT_EQ(Refused(Authorize(Warrant(), Ask({"gallery-a"}, 5, 1), budget)),
            RefusalCode::kBudgetExhausted);
  budget.Release(kWarrantA, 2);  // two searches never ran
  EXPECT_EQ(Authorize(Warrant(), Ask({"gallery-a"}, 5, 2), budget), std::nullopt);
}

TEST(Authorize, IdentityMismatch) {
  BudgetTracker budget;
  Request request = Ask({"gallery-a"}, 5, 1);
  request.tls_identity = "investigator-8";
  EXPECT_EQ(Refused(Authorize(Warrant(), request, budget)), RefusalCode::kIdentityMismatch);
  request.tls_identity = "investigator-7";
  EXPECT_EQ(Authorize(Warrant(), request, budget), std::nullopt);
}

TEST(Authorize, NonsensicalRequestFailsClosed) {
  BudgetTracker budget;
  EXPECT_TRUE(Authorize(Warrant(), Ask({"gallery-a"}, 0, 1), budget).has_value());
  EXPECT_TRUE(Authorize(Warrant(), Ask({"gallery-a"}, 5, -3), budget).has_value());
  EXPECT_EQ(budget.Used(kWarrantA), 0);
}

TEST(BudgetTracker, NeverOverflowsPastTheMaximum) {
  BudgetTracker budget;
  const int64_t max = std::numeric_limits<int64_t>::max();
  EXPECT_TRUE(budget.TryReserve(kW, max - 1, max));
  EXPECT_FALSE(budget.TryReserve(kW, 2, max));
  EXPECT_TRUE(budget.TryReserve(kW, 1, max));
  EXPECT_FALSE(budget.TryReserve(kW, max, max));
  EXPECT_EQ(budget.Used(kW), max);
  EXPECT_EQ(budget.Used(WarrantId{"authority-a", "unknown"}), 0);
}

TEST(BudgetTracker, IssuersNeverShareABudgetEvenWithTheSameJti) {
  BudgetTracker budget;
  VerifiedWarrant a = Warrant();
  VerifiedWarrant b = Warrant();
  b.claims.iss = "authority-b";  // the same jti "warrant-0001", picked by another issuer
  EXPECT_EQ(Authorize(a, Ask({"gallery-a"}, 5, 10), budget), std::nullopt);
  EXPECT_EQ(Refused(Authorize(a, Ask({"gallery-a"}, 5, 1), budget)), RefusalCode::kBudgetExhausted);
  // Issuer a's searches (or a restore from the ledger) spend nothing of issuer b's warrant.
  EXPECT_EQ(Authorize(b, Ask({"gallery-a"}, 5, 10), budget), std::nullopt);
  budget.Restore(WarrantId{"authority-c", "warrant-0001"}, 10);
  EXPECT_EQ(budget.Used(IdOf(a.claims)), 10);
  EXPECT_EQ(budget.Used(IdOf(b.claims)), 10);
  budget.Release(IdOf(b.claims), 10);
  EXPECT_EQ(budget.Used(IdOf(a.claims)), 10);
  EXPECT_EQ(budget.Used(IdOf(b.claims)), 0);
}

TEST(Authorize, CheckScopeReservesNothingAndReserveBudgetOnlyReserves) {
  BudgetTracker budget;
  EXPECT_EQ(CheckScope(Warrant(), Ask({"gallery-a"}, 5, 4)), std::nullopt);
  EXPECT_EQ(Refused(CheckScope(Warrant(), Ask({"gallery-z"}, 5, 4))),
            RefusalCode::kCollectionOutOfScope);
  EXPECT_EQ(budget.Used(kWarrantA), 0);
  EXPECT_EQ(ReserveBudget(Warrant(), 4, budget), std::nullopt);
  EXPECT_EQ(budget.Used(kWarrantA), 4);
  EXPECT_EQ(Refused(ReserveBudget(Warrant(), 7, budget)), RefusalCode::kBudgetExhausted);
  EXPECT_TRUE(ReserveBudget(Warrant(), 0, budget).has_value());
  EXPECT_EQ(budget.Used(kWarrantA), 4);
}

TEST(BudgetTracker, ConcurrentReservationsNeverOverspend) {
  BudgetTracker budget;
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        if (budget.TryReserve(kShared, 1, 1000)) ++granted;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(granted.load(), 1000);
  EXPECT_EQ(budget.Used(kShared), 1000);
}

TEST(RefusalCodeName, EveryCodeHasItsOwnName) {
  std::set<std::string_view> names;
  for (int code = 0; code <= static_cast<int>(RefusalCode::kIdentityMismatch); ++code) {
    std::string_view name = RefusalCodeName(static_cast<RefusalCode>(code));
    EXPECT_NE(name, "unknown_refusal");
    EXPECT_TRUE(names.insert(name).second) << name;
  }
  EXPECT_EQ(RefusalCodeName(RefusalCode::kAlgorithmNotAllowed), "algorithm_not_allowed");
}

}  // namespace
}  // namespace probity::warrant
