#include "revocation_list.h"

#include "probity/common/string_view.h"
#include "strict_json.h"

namespace probity::warrant::internal {
namespace {

constexpr std::string_view kSpace = " \t\r\n";

std::string_view Trim(std::string_view line) {
  const size_t first = line.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return line.substr(first, line.find_last_not_of(kSpace) - first + 1);
}

absl::Status LineError(int line_number, std::string_view why) {
  return absl::InvalidArgumentError(
      common::Cat("revocation list line ", line_number, ": ", why,
                  R"( (each line names one warrant as {"iss":"<issuer>","jti":"<warrant id>"}))"));
}

}  // namespace

absl::StatusOr<RevocationList> RevocationList::Parse(std::string_view text) {
  RevocationList list;
  int line_number = 0;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    const std::string_view line = Trim(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    ++line_number;
    if (line.empty() || line.front() == '#') continue;
    if (line.front() != '{') {
      return LineError(line_number,
                       "a bare warrant id (the earlier format) does not say which issuer's "
                       "warrant it revokes");
    }
    StrictJson parsed = ParseStrictJsonObject(line, /*max_depth=*/1);
    if (!parsed.error.empty()) return LineError(line_number, parsed.error);
    const nlohmann::json& object = parsed.value;
    for (const char* member : {"iss", "jti"}) {
      if (!object.contains(member) || !object.at(member).is_string() ||
          object.at(member).get_ref<const std::string&>().empty()) {
        return LineError(line_number, common::Cat("\"", member, "\" must be a non-empty string"));
      }
    }
    if (object.size() != 2) {
      return LineError(line_number, "members other than \"iss\" and \"jti\" are not understood");
    }
    list.revoked_.emplace(object.at("iss").get<std::string>(), object.at("jti").get<std::string>());
  }
  return list;
}

}  // namespace probity::warrant::internal
