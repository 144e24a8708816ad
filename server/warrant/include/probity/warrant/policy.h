#pragma once

// What this deployment accepts of any warrant: audience, clock skew, lifetime, token size.

#include <cstddef>
#include <string>

#include "absl/time/time.h"

namespace probity::warrant {

struct Policy {
  std::string audience;  // this deployment's name
  absl::Duration clock_skew = absl::Seconds(60);
  absl::Duration max_lifetime = absl::Hours(24 * 30);
  size_t max_token_bytes = 8192;
};

}  // namespace probity::warrant
