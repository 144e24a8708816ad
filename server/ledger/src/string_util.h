#pragma once

// Debian's Abseil has its own string_view type, distinct from std::string_view: these bridge.

#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"

namespace probity::ledger::internal {

inline absl::string_view AsAbsl(std::string_view text) { return {text.data(), text.size()}; }

inline std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(separator, start);
    if (end == std::string_view::npos) {
      parts.push_back(text.substr(start));
      return parts;
    }
    parts.push_back(text.substr(start, end - start));
    start = end + 1;
  }
}

}  // namespace probity::ledger::internal
