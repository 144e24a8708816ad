#pragma once

// The revocation file: one revoked warrant per line, named by its issuer and its jti, because a
// jti is unique only within its issuer. Format (see README "Revocation list"):
//
//   # comment
//   {"iss":"https://issuer.example","jti":"warrant-0001"}
//
// Blank lines and lines starting with '#' are ignored. Any other line must be a JSON object with
// exactly the members "iss" and "jti" (non-empty strings). A bare jti, the format of earlier
// versions, is refused with the line number: it cannot say which issuer's warrant it revokes,
// and reading it as "every issuer's" would let one issuer's revocation stop another's warrant.

#include <string>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "probity/warrant/claims.h"

namespace probity::warrant::internal {

class RevocationList {
 public:
  static absl::StatusOr<RevocationList> Parse(std::string_view text);

  bool Contains(const WarrantId& warrant) const {
    return revoked_.contains(std::make_pair(warrant.issuer, warrant.jti));
  }
  size_t size() const { return revoked_.size(); }

 private:
  absl::flat_hash_set<std::pair<std::string, std::string>> revoked_;
};

}  // namespace probity::warrant::internal
