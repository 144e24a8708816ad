#pragma once

// Kept only for ed25519.cpp, which another change reworks at the same time; every other file
// uses probity/common/string_view.h and probity/common/hex.h. Delete this header once
// ed25519.cpp includes those.

#include <string>
#include <string_view>

#include "probity/common/hex.h"
#include "probity/common/string_view.h"

namespace probity::warrant::internal {

using common::Cat;
inline std::string LowerHex(std::string_view bytes) { return common::LowercaseHex(bytes); }

}  // namespace probity::warrant::internal
