#include "strict_json.h"

#include <set>
#include <vector>

namespace probity::warrant::internal {

StrictJson ParseStrictJsonObject(std::string_view text, int max_depth) {
  StrictJson result;
  // nlohmann skips a byte-order mark silently; a token's JSON has no business carrying one.
  if (text.starts_with("\xEF\xBB\xBF")) {
    result.error = "JSON text starts with a byte-order mark";
    return result;
  }
  // One set of member names per open object; the parser reports events depth-first.
  std::vector<std::set<std::string>> open_objects;
  auto callback = [&](int depth, nlohmann::json::parse_event_t event,
                      nlohmann::json& parsed) -> bool {
    if (!result.error.empty()) return false;
    using Event = nlohmann::json::parse_event_t;
    if (depth > max_depth) {
      result.error = "JSON nested deeper than " + std::to_string(max_depth) + " levels";
      return false;
    }
    if (event == Event::object_start) {
      open_objects.emplace_back();
    } else if (event == Event::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == Event::key) {
      const std::string& name = parsed.get_ref<const std::string&>();
      if (open_objects.empty() || !open_objects.back().insert(name).second) {
        result.error = "JSON member \"" + name + "\" appears twice";
        return false;
      }
    }
    return true;
  };
  try {
    result.value = nlohmann::json::parse(text.begin(), text.end(), callback,
                                         /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const nlohmann::json::exception& e) {
    if (result.error.empty()) result.error = std::string("invalid JSON: ") + e.what();
  }
  if (result.error.empty() && !result.value.is_object()) {
    result.error = "JSON text is not an object";
  }
  if (!result.error.empty()) result.value = nullptr;
  return result;
}

}  // namespace probity::warrant::internal
