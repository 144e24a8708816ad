// The serving path's latency histogram: where each observation lands, what a window's
// difference holds, and the quantiles gpu_bench and the metrics endpoint read from it.
#include "probity/service/latency_histogram.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace probity::service {
namespace {

size_t BucketOf(uint64_t micros) {
  LatencyHistogram histogram;
  histogram.Observe(micros);
  const LatencyHistogram::Snapshot snapshot = histogram.Read();
  for (size_t i = 0; i < LatencyHistogram::kBuckets; ++i) {
    if (snapshot.counts[i] == 1) return i;
  }
  ADD_FAILURE() << micros << " us landed in no bucket";
  return LatencyHistogram::kBuckets;
}

TEST(LatencyHistogramTest, EachObservationLandsInTheFirstBucketWhoseBoundHoldsIt) {
  EXPECT_EQ(BucketOf(0), 0u);
  EXPECT_EQ(BucketOf(50), 0u);  // bounds are inclusive, as Prometheus's `le`
  EXPECT_EQ(BucketOf(51), 1u);
  EXPECT_EQ(BucketOf(4999), BucketOf(5000));
  EXPECT_EQ(BucketOf(5001), BucketOf(5000) + 1);
  EXPECT_EQ(BucketOf(10'000'000), LatencyHistogram::kBuckets - 2);
  EXPECT_EQ(BucketOf(10'000'001), LatencyHistogram::kBuckets - 1);  // beyond every bound
  EXPECT_EQ(BucketOf(UINT64_MAX), LatencyHistogram::kBuckets - 1);
}

TEST(LatencyHistogramTest, QuantilesInterpolateInsideTheirBucket) {
  LatencyHistogram histogram;
  EXPECT_EQ(histogram.Read().QuantileMicros(0.99), 0);  // nothing observed
  // 98 fast observations (50-100 us bucket) and 2 slow ones (4000-4500 us bucket).
  for (int i = 0; i < 98; ++i) histogram.Observe(80);
  histogram.Observe(4200);
  histogram.Observe(4400);
  const LatencyHistogram::Snapshot snapshot = histogram.Read();
  EXPECT_EQ(snapshot.count(), 100u);
  // The median is the 50th of 98 in (50, 100]: 50 + 50 * 50 / 98.
  EXPECT_NEAR(snapshot.QuantileMicros(0.5), 50 + 50.0 * 50 / 98, 1e-9);
  // p99 is the 99th observation, the first of the two in (4000, 4500]: halfway.
  EXPECT_NEAR(snapshot.QuantileMicros(0.99), 4250, 1e-9);
  EXPECT_NEAR(snapshot.QuantileMicros(1.0), 4500, 1e-9);
  // Beyond the last bound, the last bound.
  LatencyHistogram slow;
  slow.Observe(20'000'000);
  EXPECT_EQ(slow.Read().QuantileMicros(0.5), 10'000'000);
}

TEST(LatencyHistogramTest, ASnapshotSinceAnEarlierOneHoldsOnlyTheWindow) {
  LatencyHistogram histogram;
  for (int i = 0; i < 1000; ++i) histogram.Observe(9000);  // before the window
  const LatencyHistogram::Snapshot before = histogram.Read();
  for (int i = 0; i < 10; ++i) histogram.Observe(300);
  const LatencyHistogram::Snapshot window = histogram.Read().Since(before);
  EXPECT_EQ(window.count(), 10u);
  EXPECT_LE(window.QuantileMicros(0.99), 300);
  EXPECT_GT(window.QuantileMicros(0.99), 200);
}

TEST(LatencyHistogramTest, ConcurrentObservationsAreAllCounted) {
  LatencyHistogram histogram;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&histogram, t] {
      for (int i = 0; i < 10'000; ++i) histogram.Observe(static_cast<uint64_t>(t * 1000 + i % 7));
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(histogram.Read().count(), 80'000u);
}

}  // namespace
}  // namespace probity::service
