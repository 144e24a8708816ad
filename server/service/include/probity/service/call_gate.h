#pragma once

// The one place where callers are admitted: every RPC of a service registered through
// CallGate::Guard passes the gate before its handler runs. The gate looks the method up in
// the access policy (access_policy.h), admits only callers of that role (RoleGate), and
// answers everyone else UNAUTHENTICATED or PERMISSION_DENIED without running the handler. A
// method the policy does not name is refused. Refused calls to operator, auditor and router
// methods are REFUSAL entries in the ledger where there is one (bounded: per caller, then by
// the ledger's refusal rate limit).
//
// gRPC 1.51's server interceptors cannot end a call before its handler, so the gate wraps each
// method's handler at registration instead.

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "probity/service/access_policy.h"
#include "probity/service/audit_log.h"
#include "probity/service/auth.h"
#include "probity/service/metrics.h"

namespace google::protobuf {
class ServiceDescriptor;
}

namespace probity::service {

class CallGate {
 public:
  struct Members {
    std::vector<RoleMember> operators;
    std::vector<RoleMember> auditors;
    // nullopt: router methods are open (a shard server on loopback without `routers`).
    std::optional<std::vector<RoleMember>> routers;
  };
  // `audit`: where refused calls are recorded; null on shard servers (no ledger), where they
  // are only logged. `metrics`: where every refused call is counted (probity_refusals_total);
  // null without metrics. Both must outlive the gate.
  CallGate(Members members, AuditLog* audit, Metrics* metrics = nullptr);

  // The service to register instead of `service` (which must outlive it): the same methods,
  // each behind the gate. `service` must be generated from the service named `full_name`
  // ("probity.v1.Admin"). Fails when the descriptor pool does not know that service.
  absl::StatusOr<std::unique_ptr<grpc::Service>> Guard(grpc::Service& service,
                                                       const std::string& full_name);

  // The caller's name (empty for open and warrant methods), or the refusal.
  absl::StatusOr<std::string> Admit(std::string_view method,
                                    const grpc::ServerContext& context) const;

  // Counts a refused call in the metrics, and records it unless this caller is over its
  // limit; returns the ledger index when it was recorded.
  std::optional<uint64_t> RecordRefusal(std::string_view method, const grpc::ServerContext& context,
                                        const absl::Status& refusal);

  // Per caller (TLS identity, else peer address), at most this many refused calls are
  // recorded per window; the rest are counted into that caller's next recorded refusal.
  static constexpr int kRefusalsPerCallerPerWindow = 10;
  static constexpr absl::Duration kRefusalWindow = absl::Minutes(1);
  static constexpr size_t kMaxTrackedCallers = 1024;

 private:
  struct CallerWindow {
    absl::Time start;
    int recorded = 0;
    uint64_t not_recorded = 0;
  };

  RoleGate operators_;
  RoleGate auditors_;
  std::optional<RoleGate> routers_;
  AuditLog* audit_;
  Metrics* metrics_;
  std::mutex windows_mutex_;
  std::map<std::string, CallerWindow> windows_;
};

// The admitted caller's name for the guarded call running on this thread: the operator,
// auditor or router that CallGate admitted (empty for open and warrant methods, and outside
// a guarded handler). gRPC's synchronous API runs a handler on the thread that the gate
// admitted it on.
const std::string& AdmittedCaller();

}  // namespace probity::service
