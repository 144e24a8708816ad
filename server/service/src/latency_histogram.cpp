#include "probity/service/latency_histogram.h"

#include <algorithm>
#include <cmath>

namespace probity::service {

void LatencyHistogram::Observe(uint64_t micros) {
  const auto bound = std::lower_bound(kUpperBoundsMicros.begin(), kUpperBoundsMicros.end(), micros);
  counts_[static_cast<size_t>(bound - kUpperBoundsMicros.begin())].fetch_add(
      1, std::memory_order_relaxed);
}

LatencyHistogram::Snapshot LatencyHistogram::Read() const {
  Snapshot snapshot;
  for (size_t i = 0; i < kBuckets; ++i) {
    snapshot.counts[i] = counts_[i].load(std::memory_order_relaxed);
  }
  return snapshot;
}

uint64_t LatencyHistogram::Snapshot::count() const {
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  return total;
}

LatencyHistogram::Snapshot LatencyHistogram::Snapshot::Since(const Snapshot& earlier) const {
  Snapshot difference;
  for (size_t i = 0; i < kBuckets; ++i) {
    // Counts only grow; a bucket read before a concurrent observation landed stays at 0.
    difference.counts[i] = counts[i] >= earlier.counts[i] ? counts[i] - earlier.counts[i] : 0;
  }
  return difference;
}

double LatencyHistogram::Snapshot::QuantileMicros(double q) const {
  const uint64_t total = count();
  if (total == 0) return 0;
  // The rank of the quantile's observation, 1-based: the smallest r with r >= q * total.
  const double rank =
      std::max(1.0, std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(total)));
  uint64_t below = 0;
  for (size_t i = 0; i < kUpperBoundsMicros.size(); ++i) {
    if (static_cast<double>(below + counts[i]) >= rank) {
      const double lower = i == 0 ? 0 : static_cast<double>(kUpperBoundsMicros[i - 1]);
      const double upper = static_cast<double>(kUpperBoundsMicros[i]);
      return lower +
             (upper - lower) * (rank - static_cast<double>(below)) / static_cast<double>(counts[i]);
    }
    below += counts[i];
  }
  return static_cast<double>(kUpperBoundsMicros.back());
}

}  // namespace probity::service
