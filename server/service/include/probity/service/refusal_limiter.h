#pragma once

// How many refusals of callers without a verified warrant are written to the ledger: a token
// bucket per caller, so that one caller's junk cannot use up another's share, under a bucket
// for all of them together, so that many callers at once still write a bounded amount. The
// number of callers tracked is bounded too; callers beyond it share one bucket. Refusals of a
// verified warrant never pass through here: they are always recorded.

#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"

namespace probity::service {

struct RefusalLimits {
  double total_per_second = 20;      // all callers together; burst 5 s worth
  double per_caller_per_second = 5;  // one caller; burst 5 s worth
  size_t callers_tracked = 4096;
};

// Who a refusal is counted against: "tls:<identity>" for a verified client certificate, else
// "ip:<address>" of the peer (an IPv6 peer by its /64: one host commonly holds a whole /64),
// else the peer string as gRPC gives it (e.g. "unix:...").
std::string CallerKey(const std::optional<std::string>& tls_identity, std::string_view peer);

class RefusalLimiter {
 public:
  using Clock = std::function<absl::Time()>;
  explicit RefusalLimiter(
      RefusalLimits limits, Clock clock = [] { return absl::Now(); });

  // Takes one refusal from `caller`'s bucket and from the total; takes nothing and returns
  // false when either is empty.
  bool TryTake(const std::string& caller);

  size_t callers_tracked() const;

 private:
  struct Bucket {
    double tokens = 0;
    absl::Time last_refill;
  };
  struct Rate {
    double per_second;
    double burst;
    absl::Duration full_after;  // time for an empty bucket to fill up
  };
  static Rate RateOf(double per_second);
  static void Refill(Bucket& bucket, const Rate& rate, absl::Time now);
  Bucket& BucketOf(const std::string& caller, absl::Time now);

  const RefusalLimits limits_;
  const Rate total_rate_;
  const Rate caller_rate_;
  const Clock clock_;
  mutable std::mutex mutex_;
  Bucket total_;
  Bucket shared_;  // callers that found the table full of active callers
  absl::flat_hash_map<std::string, Bucket> callers_;
};

}  // namespace probity::service
