#pragma once

// Which role may call each RPC, by its full gRPC method name ("/probity.v1.Admin/Erase"). The
// CallGate enforces it for every method of every probity.v1 service before the method's
// handler runs; a method the table does not name is refused, so a new RPC stays closed until
// someone decides who may call it.

#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace probity::service {

enum class CallerRole {
  kOpen,      // anyone (health checks, reflection)
  kWarrant,   // anyone may call; the Search service itself checks the warrant and records it
  kOperator,  // `operators` of the configuration
  kAuditor,   // `auditors`
  kRouter,    // `routers` of a shard server (anyone, when it serves plaintext on loopback)
};

std::string_view CallerRoleName(CallerRole role);

// The role `method` needs, or nullopt when the table does not name it (refuse the call).
std::optional<CallerRole> RequiredRole(std::string_view method);

// The whole table, for tests and documentation.
const std::vector<std::pair<std::string_view, CallerRole>>& AccessPolicyTable();

}  // namespace probity::service
