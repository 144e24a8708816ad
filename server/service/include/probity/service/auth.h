#pragma once

// Who is calling: the bearer token of `authorization: Bearer ...` and, under mutual TLS, the
// verified client certificate's identity. RoleGate admits only the members of one role named
// in the configuration (operators, auditors or routers); CallGate (call_gate.h) decides which
// role each RPC needs.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "probity/service/config.h"

namespace grpc {
class ServerContext;
}

namespace probity::service {

std::optional<std::string> BearerToken(const grpc::ServerContext& context);
std::optional<std::string> TlsClientIdentity(const grpc::ServerContext& context);

class RoleGate {
 public:
  RoleGate(std::string role, std::vector<RoleMember> members)
      : role_(std::move(role)), members_(std::move(members)) {}
  // The member's name, or UNAUTHENTICATED / PERMISSION_DENIED.
  absl::StatusOr<std::string> Admit(const grpc::ServerContext& context) const;
  // The same for a caller known by a bearer token and/or a verified certificate identity
  // (the HTTPS report listener).
  absl::StatusOr<std::string> Admit(const std::optional<std::string>& token,
                                    const std::optional<std::string>& identity) const;

 private:
  std::string role_;
  std::vector<RoleMember> members_;
};

}  // namespace probity::service
