#include "probity/service/refusal_limiter.h"

#include <arpa/inet.h>

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace probity::service {
namespace {

// "ipv4:1.2.3.4:5678" -> "1.2.3.4"; "ipv6:[::1]:5678" -> "::1"; anything else -> nullopt.
std::optional<std::pair<std::string, bool>> PeerHost(std::string_view peer) {
  if (peer.starts_with("ipv4:")) {
    peer.remove_prefix(5);
    const size_t colon = peer.rfind(':');
    return std::make_pair(std::string(peer.substr(0, colon)), false);
  }
  if (peer.starts_with("ipv6:")) {
    peer.remove_prefix(5);
    if (peer.starts_with('[')) {
      const size_t close = peer.find(']');
      if (close == std::string_view::npos) return std::nullopt;
      return std::make_pair(std::string(peer.substr(1, close - 1)), true);
    }
    return std::make_pair(std::string(peer), true);
  }
  return std::nullopt;
}

std::string Ipv6Caller(const std::string& host) {
  std::string text = host.substr(0, host.find('%'));  // a zone id names no other host
  in6_addr address;
  if (inet_pton(AF_INET6, text.c_str(), &address) != 1) return "ip:" + host;
  const auto* bytes = reinterpret_cast<const char*>(address.s6_addr);
  if (IN6_IS_ADDR_V4MAPPED(&address)) {
    char v4[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, bytes + 12, v4, sizeof(v4)) != nullptr) return absl::StrCat("ip:", v4);
  }
  return absl::StrCat("ip:", absl::BytesToHexString(absl::string_view(bytes, 8)), "::/64");
}

}  // namespace

std::string CallerKey(const std::optional<std::string>& tls_identity, std::string_view peer) {
  if (tls_identity && !tls_identity->empty()) return "tls:" + *tls_identity;
  auto host = PeerHost(peer);
  if (!host) return std::string(peer);
  return host->second ? Ipv6Caller(host->first) : "ip:" + host->first;
}

RefusalLimiter::Rate RefusalLimiter::RateOf(double per_second) {
  const double burst = std::max(1.0, per_second * 5);
  return Rate{per_second, burst, absl::Seconds(burst / per_second)};
}

RefusalLimiter::RefusalLimiter(RefusalLimits limits, Clock clock)
    : limits_(limits),
      total_rate_(RateOf(limits.total_per_second)),
      caller_rate_(RateOf(limits.per_caller_per_second)),
      clock_(std::move(clock)) {
  const absl::Time now = clock_();
  total_ = Bucket{total_rate_.burst, now};
  shared_ = Bucket{caller_rate_.burst, now};
}

void RefusalLimiter::Refill(Bucket& bucket, const Rate& rate, absl::Time now) {
  const double elapsed = std::max(0.0, absl::ToDoubleSeconds(now - bucket.last_refill));
  bucket.tokens = std::min(rate.burst, bucket.tokens + elapsed * rate.per_second);
  bucket.last_refill = now;
}

RefusalLimiter::Bucket& RefusalLimiter::BucketOf(const std::string& caller, absl::Time now) {
  if (auto it = callers_.find(caller); it != callers_.end()) return it->second;
  if (callers_.size() >= limits_.callers_tracked) {
    // A caller whose bucket has filled up again is indistinguishable from a new one: forget it.
    auto idle = std::find_if(callers_.begin(), callers_.end(), [&](const auto& entry) {
      return now - entry.second.last_refill >= caller_rate_.full_after;
    });
    if (idle == callers_.end()) return shared_;
    callers_.erase(idle);
  }
  return callers_.emplace(caller, Bucket{caller_rate_.burst, now}).first->second;
}

bool RefusalLimiter::TryTake(const std::string& caller) {
  std::lock_guard lock(mutex_);
  const absl::Time now = clock_();
  Bucket& own = BucketOf(caller, now);
  Refill(own, caller_rate_, now);
  Refill(total_, total_rate_, now);
  if (own.tokens < 1 || total_.tokens < 1) return false;
  own.tokens -= 1;
  total_.tokens -= 1;
  return true;
}

size_t RefusalLimiter::callers_tracked() const {
  std::lock_guard lock(mutex_);
  return callers_.size();
}

}  // namespace probity::service
