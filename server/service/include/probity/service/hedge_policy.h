#pragma once

// When the router sends a second copy of a shard search to another replica ("hedges"), and how
// many such copies it may send. The delay follows the shard searches' observed latency the way
// TCP sets its retransmission timeout (RFC 6298: smoothed latency plus four times its mean
// deviation), bounded by the configured minimum and maximum, so a replica that answers far
// later than usual is overtaken soon after "usual" ends. The budget bounds the extra load:
// hedges earn credit with every first attempt, so when every replica is slow (an overload)
// hedging cannot double the load.

#include <cstdint>
#include <mutex>

#include "absl/time/time.h"

namespace probity::service {

struct HedgeOptions {
  absl::Duration min_delay = absl::Milliseconds(10);
  absl::Duration max_delay = absl::Seconds(1);
  int budget_percent = 20;  // hedges per 100 first attempts, after a burst of kBurst
};

class HedgePolicy {
 public:
  static constexpr int kBurst = 10;

  explicit HedgePolicy(HedgeOptions options) : options_(options) {}

  // A shard search answered in `latency`.
  void Observe(absl::Duration latency);
  // How long to wait for an attempt before hedging it.
  absl::Duration Delay() const;
  // A first attempt was sent: earns budget_percent / 100 of a hedge.
  void EarnCredit();
  // Takes one hedge's credit; false when none is left (the attempt is not hedged).
  bool TakeCredit();

 private:
  const HedgeOptions options_;
  mutable std::mutex mutex_;
  bool observed_ = false;
  double smoothed_ms_ = 0;
  double deviation_ms_ = 0;
  int64_t credit_percent_ = kBurst * 100;  // in hundredths of a hedge
};

}  // namespace probity::service
