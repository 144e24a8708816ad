#pragma once

// Standard base64 with padding, accepting only its canonical spelling: signed notes and
// checkpoints are hashed byte for byte, so two spellings of one value must not both pass.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "probity/common/string_view.h"

namespace probity::ledger::internal {

inline absl::StatusOr<std::string> DecodeBase64Strict(std::string_view text) {
  std::string decoded;
  if (!absl::Base64Unescape(common::AsAbsl(text), &decoded) ||
      absl::Base64Escape(decoded) != text) {
    return absl::InvalidArgumentError(
        absl::StrCat("not canonical base64: '", common::AsAbsl(text), "'"));
  }
  return decoded;
}

}  // namespace probity::ledger::internal
