#pragma once

// Lowercase hexadecimal, as digests are printed in manifests, ledger exports, tokens' SHA-256
// and configuration files.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace probity::common {

// Two lowercase hex digits per byte, most significant nibble first.
std::string LowercaseHex(std::string_view bytes);
std::string LowercaseHex(std::span<const uint8_t> bytes);

}  // namespace probity::common
