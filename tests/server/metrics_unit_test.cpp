// The metrics of one process without a server: each hot-path call moves exactly its series,
// refusal codes are a bounded set (free text never becomes a label), the ledger hook feeds the
// ledger histograms, and GPU memory appears only for a process that has a GpuRuntime.
#include <gtest/gtest.h>

#include <optional>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "probity/index/gpu.h"
#include "probity/ledger/commit_observer.h"
#include "probity/service/catalog.h"
#include "probity/service/metrics.h"
#include "probity/service/shard_backend.h"

namespace probity::service::testing {
namespace {

// The value of one series ("name{labels}" exactly as printed), nullopt when absent.
std::optional<double> Sample(const std::string& text, const std::string& series) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
  }
  return std::nullopt;
}

TEST(MetricsTest, EveryRefusalCodeStartsAtZeroAndUnknownCodesCountAsOther) {
  Metrics metrics;
  const std::string before = metrics.Text();
  for (const std::string& code : Metrics::RefusalCodes()) {
    EXPECT_EQ(Sample(before, "probity_refusals_total{code=\"" + code + "\"}"), 0.0) << code;
  }
  EXPECT_EQ(Sample(before, R"(probity_refusals_total{code="budget_exhausted"})"), 0.0);

  metrics.SearchRefused("expired");
  metrics.SearchRefused("expired");
  metrics.SearchRefused("unknown_collection");
  // A code the metrics do not know (free text, as a careless caller might pass) is "other",
  // never a new label value.
  metrics.SearchRefused("no warrant for CASE-2026-001 from investigator-7");
  const std::string after = metrics.Text();
  EXPECT_EQ(Sample(after, R"(probity_refusals_total{code="expired"})"), 2.0);
  EXPECT_EQ(Sample(after, R"(probity_refusals_total{code="unknown_collection"})"), 1.0);
  EXPECT_EQ(Sample(after, R"(probity_refusals_total{code="other"})"), 1.0);
  EXPECT_EQ(Sample(after, R"(probity_searches_total{outcome="refused"})"), 4.0);
  EXPECT_FALSE(absl::StrContains(after, "CASE-2026-001"));
  EXPECT_FALSE(absl::StrContains(after, "investigator-7"));
}

// Calls refused at the call gate and searches turned away busy are refusals too, each under its
// own code; a gate refusal is not a search.
TEST(MetricsTest, GateRefusalsAndBusySearchesCountAsRefusalsByCode) {
  Metrics metrics;
  const std::string before = metrics.Text();
  for (std::string_view code :
       {Metrics::kCallerUnauthenticated, Metrics::kCallerNotPermitted, Metrics::kServerBusy}) {
    EXPECT_EQ(Sample(before, "probity_refusals_total{code=\"" + std::string(code) + "\"}"), 0.0)
        << code;
  }
  metrics.CallRefused(Metrics::kCallerUnauthenticated);
  metrics.CallRefused(Metrics::kCallerNotPermitted);
  metrics.CallRefused(Metrics::kCallerNotPermitted);
  metrics.CallRefused("refused for operator-7 at 10.0.0.9");  // never a label value
  metrics.SearchBusy();
  const std::string after = metrics.Text();
  EXPECT_EQ(Sample(after, R"(probity_refusals_total{code="caller_unauthenticated"})"), 1.0);
  EXPECT_EQ(Sample(after, R"(probity_refusals_total{code="caller_not_permitted"})"), 2.0);
  EXPECT_EQ(Sample(after, R"(probity_refusals_total{code="other"})"), 1.0);
  EXPECT_EQ(Sample(after, R"(probity_refusals_total{code="server_busy"})"), 1.0);
  EXPECT_EQ(Sample(after, R"(probity_searches_total{outcome="busy"})"), 1.0);
  EXPECT_EQ(Sample(after, R"(probity_searches_total{outcome="refused"})"), 0.0);
  EXPECT_FALSE(absl::StrContains(after, "operator-7"));
  EXPECT_FALSE(absl::StrContains(after, "10.0.0.9"));
}

TEST(MetricsTest, SearchesCountByOutcomeWithLatencyAndMissingShards) {
  Metrics metrics;
  metrics.SearchRan(SearchOutcome::kAnswered, absl::Milliseconds(3), 4, 4);
  metrics.SearchRan(SearchOutcome::kAnsweredPartial, absl::Milliseconds(30), 3, 4);
  metrics.SearchRan(SearchOutcome::kFailed, absl::Seconds(2), 1, 4);
  metrics.SearchBusy();
  const std::string text = metrics.Text();
  EXPECT_EQ(Sample(text, R"(probity_searches_total{outcome="answered"})"), 1.0);
  EXPECT_EQ(Sample(text, R"(probity_searches_total{outcome="answered_partial"})"), 1.0);
  EXPECT_EQ(Sample(text, R"(probity_searches_total{outcome="failed"})"), 1.0);
  EXPECT_EQ(Sample(text, R"(probity_searches_total{outcome="not_recorded"})"), 0.0);
  EXPECT_EQ(Sample(text, R"(probity_searches_total{outcome="busy"})"), 1.0);
  EXPECT_EQ(Sample(text, "probity_search_duration_seconds_count"), 3.0);
  EXPECT_EQ(Sample(text, R"(probity_search_duration_seconds_bucket{le="0.005"})"), 1.0);
  EXPECT_EQ(Sample(text, R"(probity_search_duration_seconds_bucket{le="0.05"})"), 2.0);
  EXPECT_EQ(Sample(text, R"(probity_search_duration_seconds_bucket{le="+Inf"})"), 3.0);
  EXPECT_NEAR(*Sample(text, "probity_search_duration_seconds_sum"), 2.033, 1e-9);
  EXPECT_EQ(Sample(text, "probity_search_shards_missing_total"), 4.0);  // 0 + 1 + 3
}

// A remote-like backend: StartSearch answers at once on the caller's thread; Search is never
// meant to be used.
class AsyncOnlyBackend final : public ShardBackend {
 public:
  absl::StatusOr<ShardAnswer> Search(const ShardQuery&, absl::Time) override {
    return absl::UnimplementedError("asynchronous only");
  }
  std::shared_ptr<ShardCall> StartSearch(const ShardQuery&, absl::Time,
                                         ShardSearchDone done) override {
    done(fail_next ? absl::StatusOr<ShardAnswer>(absl::UnavailableError("down"))
                   : absl::StatusOr<ShardAnswer>(ShardAnswer{}));
    return std::make_shared<NoCall>();
  }
  std::string Describe() const override { return "shard-server-1:7443"; }
  bool fail_next = false;

 private:
  struct NoCall final : ShardCall {
    void Cancel() override {}
  };
};

TEST(MetricsTest, ObservedRemoteBackendsKeepTheirAsynchronousSearchAndCountIt) {
  Metrics metrics;
  auto inner = std::make_shared<AsyncOnlyBackend>();
  std::shared_ptr<ShardBackend> observed = metrics.Observe(inner);
  int answered = 0, failed = 0;
  auto done = [&](absl::StatusOr<ShardAnswer> answer) { ++(answer.ok() ? answered : failed); };
  // The router searches a backend asynchronously only when StartSearch gives it a call; a
  // wrapper that dropped it would move every remote search onto the router's thread pool.
  EXPECT_NE(observed->StartSearch(ShardQuery{}, absl::InfiniteFuture(), done), nullptr);
  inner->fail_next = true;
  EXPECT_NE(observed->StartSearch(ShardQuery{}, absl::InfiniteFuture(), done), nullptr);
  EXPECT_EQ(answered, 1);
  EXPECT_EQ(failed, 1);
  const std::string text = metrics.Text();
  EXPECT_EQ(
      Sample(text, R"(probity_shard_searches_total{backend="shard-server-1:7443",result="ok"})"),
      1.0);
  EXPECT_EQ(
      Sample(text, R"(probity_shard_searches_total{backend="shard-server-1:7443",result="error"})"),
      1.0);
}

TEST(MetricsTest, TheLedgerHookFeedsAppendsFsyncAndGroupCommitSizes) {
  Metrics metrics;
  const auto observer = metrics.ledger_observer();
  observer->OnGroupCommit({/*entries=*/3, /*bytes=*/900, absl::Microseconds(800)});
  observer->OnGroupCommit({/*entries=*/1, /*bytes=*/300, absl::Milliseconds(20)});
  observer->OnAppendFailed();
  const std::string text = metrics.Text();
  EXPECT_EQ(Sample(text, "probity_ledger_appends_total"), 4.0);
  EXPECT_EQ(Sample(text, "probity_ledger_append_failures_total"), 1.0);
  EXPECT_EQ(Sample(text, "probity_ledger_group_commit_entries_count"), 2.0);
  EXPECT_EQ(Sample(text, "probity_ledger_group_commit_entries_sum"), 4.0);
  EXPECT_EQ(Sample(text, R"(probity_ledger_group_commit_entries_bucket{le="1"})"), 1.0);
  EXPECT_EQ(Sample(text, R"(probity_ledger_group_commit_entries_bucket{le="4"})"), 2.0);
  EXPECT_EQ(Sample(text, "probity_ledger_fsync_duration_seconds_count"), 2.0);
  EXPECT_EQ(Sample(text, R"(probity_ledger_fsync_duration_seconds_bucket{le="0.001"})"), 1.0);
  EXPECT_EQ(Sample(text, R"(probity_ledger_fsync_duration_seconds_bucket{le="0.025"})"), 2.0);
}

// Stands in for the GPUs of a -DPROBITY_GPU=ON build: two devices with fixed memory figures.
class FakeGpuRuntime : public index::GpuRuntime {
 public:
  FakeGpuRuntime() : GpuRuntime(index::GpuOptions{{0, 3}, true, index::GpuIdPlacement::kGpu, -1}) {}
  absl::StatusOr<std::pair<int64_t, int64_t>> MemoryInfo(int device) const override {
    const int64_t total = int64_t{80} << 30;
    return std::pair<int64_t, int64_t>{total - (int64_t{device + 1} << 30), total};
  }
};

TEST(MetricsTest, GpuMemoryIsReportedPerDeviceOnlyWhereTheProcessHasGpus) {
  Catalog with_gpus(std::make_shared<FakeGpuRuntime>());
  Metrics metrics;
  Metrics::Sources sources;
  sources.catalog = &with_gpus;
  metrics.SetSources(sources);
  const std::string text = metrics.Text();
  EXPECT_EQ(Sample(text, R"(probity_gpu_memory_used_bytes{device="0"})"), double{1 << 30});
  EXPECT_EQ(Sample(text, R"(probity_gpu_memory_used_bytes{device="3"})"), double{int64_t{4} << 30});
  EXPECT_EQ(Sample(text, R"(probity_gpu_memory_total_bytes{device="3"})"),
            double{int64_t{80} << 30});

  // No GpuRuntime (every CPU-only build, and a GPU build configured without "gpu"): no GPU
  // series at all, rather than zeros that would read as idle GPUs.
  Catalog cpu_only;
  Metrics cpu_metrics;
  Metrics::Sources cpu_sources;
  cpu_sources.catalog = &cpu_only;
  cpu_metrics.SetSources(cpu_sources);
  EXPECT_FALSE(absl::StrContains(cpu_metrics.Text(), "probity_gpu_"));
}

}  // namespace
}  // namespace probity::service::testing
