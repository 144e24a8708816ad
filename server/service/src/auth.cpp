#include "probity/service/auth.h"

#include <grpcpp/grpcpp.h>
#include <openssl/crypto.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "probity/common/sha256.h"

namespace probity::service {

std::optional<std::string> BearerToken(const grpc::ServerContext& context) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return std::nullopt;
  std::string_view value(it->second.data(), it->second.size());
  constexpr std::string_view kPrefix = "Bearer ";
  if (value.size() < kPrefix.size() ||
      !absl::EqualsIgnoreCase(absl::string_view(value.data(), kPrefix.size()),
                              absl::string_view(kPrefix.data(), kPrefix.size()))) {
    return std::string();  // present but not a bearer credential
  }
  return std::string(value.substr(kPrefix.size()));
}

std::optional<std::string> TlsClientIdentity(const grpc::ServerContext& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) return std::nullopt;
  for (const char* property : {"x509_common_name", "x509_subject_alternative_name"}) {
    std::vector<grpc::string_ref> values = auth->FindPropertyValues(property);
    if (!values.empty()) return std::string(values.front().data(), values.front().size());
  }
  return std::nullopt;
}

absl::StatusOr<std::string> RoleGate::Admit(const grpc::ServerContext& context) const {
  return Admit(BearerToken(context), TlsClientIdentity(context));
}

absl::StatusOr<std::string> RoleGate::Admit(const std::optional<std::string>& token,
                                            const std::optional<std::string>& identity) const {
  if ((!token || token->empty()) && !identity) {
    return absl::UnauthenticatedError(absl::StrCat("the ", role_, " API needs an ", role_,
                                                   " credential (bearer token or client "
                                                   "certificate)"));
  }
  const std::string token_hash = token && !token->empty() ? common::Sha256Hex(*token) : "";
  for (const RoleMember& member : members_) {
    // Constant-time comparison: the hash of a guessed token must not leak by timing.
    if (!token_hash.empty() && member.token_sha256.size() == token_hash.size() &&
        CRYPTO_memcmp(member.token_sha256.data(), token_hash.data(), token_hash.size()) == 0) {
      return member.name;
    }
    if (identity && !member.tls_identity.empty() && member.tls_identity == *identity) {
      return member.name;
    }
  }
  return absl::PermissionDeniedError(
      absl::StrCat("this credential is not an ", role_, " credential"));
}

}  // namespace probity::service
