#pragma once

#include <string>

#include "probity/warrant/refusal.h"

namespace probity::warrant::internal {

inline Refusal Refuse(RefusalCode code, std::string message) {
  return Refusal{code, std::move(message)};
}

}  // namespace probity::warrant::internal
