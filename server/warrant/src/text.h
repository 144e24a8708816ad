#pragma once

// String building without absl::StrCat: Debian's absl has its own string_view type, which does
// not take the std::string_view used throughout this library.

#include <concepts>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

namespace probity::warrant::internal {

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

template <typename... Parts>
std::string Cat(const Parts&... parts) {
  std::string out;
  (AppendPart(out, parts), ...);
  return out;
}

inline std::string LowerHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    auto byte = static_cast<unsigned char>(c);
    out.push_back(kDigits[byte >> 4]);
    out.push_back(kDigits[byte & 15]);
  }
  return out;
}

}  // namespace probity::warrant::internal
