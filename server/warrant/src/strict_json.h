#pragma once

// JSON as warrants need it: one object, valid UTF-8, shallow, and no member name twice (two
// "sub" members would let two parsers read two different warrants out of one token).

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace probity::warrant::internal {

struct StrictJson {
  nlohmann::json value;  // an object when error is empty
  std::string error;     // why the text was refused
};

StrictJson ParseStrictJsonObject(std::string_view text, int max_depth = 8);

}  // namespace probity::warrant::internal
