#pragma once

// A histogram of wall times on the serving hot path: fixed bucket bounds, one relaxed atomic
// increment per observation, read while writers go on. Means per phase (ServiceCounters' sums)
// say where a search's time goes on average; a p99 target needs the tail of each phase, which
// only a distribution shows. The buckets are fine from 0.1 to 10 ms, where a GPU service's
// searches and their 5 ms p99 target lie, and coarse beyond (deadlines reach seconds).
// prometheus-cpp's Histogram would do for the endpoint but takes a mutex per observation, which
// every concurrent search would then queue on, and cannot be read as a window with quantiles
// (what gpu_bench reports); the metrics endpoint exports this one at scrape time instead.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace probity::service {

class LatencyHistogram {
 public:
  // Upper bounds (inclusive) in microseconds; a last, unbounded bucket takes the rest.
  static constexpr std::array<uint64_t, 30> kUpperBoundsMicros = {
      50,   100,  200,   300,   400,   500,   750,    1000,   1250,    1500,
      1750, 2000, 2500,  3000,  3500,  4000,  4500,   5000,   6000,    7000,
      8000, 9000, 10000, 15000, 25000, 50000, 100000, 250000, 1000000, 10000000};
  static constexpr size_t kBuckets = kUpperBoundsMicros.size() + 1;

  void Observe(uint64_t micros);

  // The counts at one moment: each bucket is read once while writers go on, so a snapshot may
  // hold an observation that a concurrent read of another bucket misses.
  struct Snapshot {
    std::array<uint64_t, kBuckets> counts{};

    uint64_t count() const;
    // What was observed between `earlier` and this snapshot (of the same histogram).
    Snapshot Since(const Snapshot& earlier) const;
    // The q-quantile (0 < q <= 1) in microseconds, interpolated linearly inside the bucket
    // that holds it; 0 without observations; the last finite bound for a quantile beyond it.
    double QuantileMicros(double q) const;
  };
  Snapshot Read() const;

 private:
  std::array<std::atomic<uint64_t>, kBuckets> counts_{};
};

}  // namespace probity::service
