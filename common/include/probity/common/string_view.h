#pragma once

// Debian 12's Abseil (20220623) has its own absl::string_view, a type distinct from
// std::string_view (ABSL_USES_STD_STRING_VIEW is off), so Abseil's string functions neither
// take nor return std::string_view. These bridge the two; code that holds std::string_view uses
// them instead of converting by hand. On an Abseil built with std::string_view they still work.

#include <concepts>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"

namespace probity::common {

inline absl::string_view AsAbsl(std::string_view text) { return {text.data(), text.size()}; }
#if !defined(ABSL_USES_STD_STRING_VIEW)
inline std::string_view AsStd(absl::string_view text) { return {text.data(), text.size()}; }
#endif
inline std::string_view AsStd(std::string_view text) { return text; }

// `text` cut at every `separator` (absl::StrSplit on std::string_view): "a,,b" gives "a", "",
// "b"; an empty text gives one empty part.
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

namespace internal {
inline void AppendPart(std::string& out, std::string_view part) { out.append(part); }
inline void AppendPart(std::string& out, const char* part) { out.append(part); }
inline void AppendPart(std::string& out, const std::string& part) { out.append(part); }
inline void AppendPart(std::string& out, char part) { out.push_back(part); }
#if !defined(ABSL_USES_STD_STRING_VIEW)
template <std::same_as<absl::string_view> View>
void AppendPart(std::string& out, const View& part) {
  out.append(part.data(), part.size());
}
#endif
template <std::integral Number>
requires(!std::same_as<Number, char>) void AppendPart(std::string& out, Number number) {
  out.append(std::to_string(number));
}
}  // namespace internal

// absl::StrCat for code that holds std::string_view: strings of either view type, characters
// and integers, concatenated.
template <typename... Parts>
std::string Cat(const Parts&... parts) {
  std::string out;
  (internal::AppendPart(out, parts), ...);
  return out;
}

}  // namespace probity::common
