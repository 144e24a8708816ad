#include "probity/service/call_gate.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message_lite.h>
#include <grpcpp/impl/rpc_service_method.h>
#include <grpcpp/support/method_handler.h>
#include <spdlog/spdlog.h>

#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
#include "probity/service/search_service.h"

namespace probity::service {
namespace {

thread_local const std::string* admitted_caller = nullptr;

// Sets AdmittedCaller() for the handler that runs in this scope.
class AdmittedCallerScope {
 public:
  explicit AdmittedCallerScope(const std::string& name) : previous_(admitted_caller) {
    admitted_caller = &name;
  }
  ~AdmittedCallerScope() { admitted_caller = previous_; }
  AdmittedCallerScope(const AdmittedCallerScope&) = delete;
  AdmittedCallerScope& operator=(const AdmittedCallerScope&) = delete;

 private:
  const std::string* previous_;
};

// grpc::Service keeps a method's handler protected; a class derived from it may name the
// member and so read the handler of the generated service it guards.
struct HandlerOf : grpc::Service {
  static grpc::internal::MethodHandler* Get(grpc::Service& service, int index) {
    return (service.*(&HandlerOf::GetHandler))(index);
  }
};

grpc::internal::RpcMethod::RpcType MethodType(const google::protobuf::MethodDescriptor& method) {
  if (method.client_streaming() && method.server_streaming()) {
    return grpc::internal::RpcMethod::BIDI_STREAMING;
  }
  if (method.client_streaming()) return grpc::internal::RpcMethod::CLIENT_STREAMING;
  if (method.server_streaming()) return grpc::internal::RpcMethod::SERVER_STREAMING;
  return grpc::internal::RpcMethod::NORMAL_RPC;
}

// Ends a call with `refusal` without running its handler, for any kind of method.
void Refuse(const grpc::internal::MethodHandler::HandlerParameter& param,
            const absl::Status& refusal) {
  const std::string message(refusal.message());
  if (refusal.code() == absl::StatusCode::kUnauthenticated) {
    grpc::internal::ErrorMethodHandler<grpc::StatusCode::UNAUTHENTICATED>(message).RunHandler(
        param);
  } else {
    grpc::internal::ErrorMethodHandler<grpc::StatusCode::PERMISSION_DENIED>(message).RunHandler(
        param);
  }
}

class GuardedHandler final : public grpc::internal::MethodHandler {
 public:
  GuardedHandler(CallGate& gate, const std::string& method, grpc::internal::MethodHandler* inner)
      : gate_(gate), method_(method), inner_(inner) {}

  void RunHandler(const HandlerParameter& param) override {
    auto* context = static_cast<grpc::ServerContext*>(param.server_context);
    const absl::StatusOr<std::string> caller = gate_.Admit(method_, *context);
    if (caller.ok()) {
      AdmittedCallerScope scope(*caller);
      inner_->RunHandler(param);
      return;
    }
    // The inner handler would have destroyed the request it deserialized; it never runs.
    if (param.request != nullptr) {
      static_cast<google::protobuf::MessageLite*>(param.request)->~MessageLite();
    }
    if (auto index = gate_.RecordRefusal(method_, *context, caller.status())) {
      context->AddTrailingMetadata(kLedgerIndexTrailer, std::to_string(*index));
    }
    Refuse(param, caller.status());
  }

  void* Deserialize(grpc_call* call, grpc_byte_buffer* request, grpc::Status* status,
                    void** handler_data) override {
    return inner_->Deserialize(call, request, status, handler_data);
  }

 private:
  CallGate& gate_;
  const std::string& method_;
  grpc::internal::MethodHandler* inner_;  // owned by the guarded service
};

class GuardedService final : public grpc::Service {
 public:
  GuardedService(CallGate& gate, grpc::Service& inner,
                 const google::protobuf::ServiceDescriptor& descriptor) {
    for (int i = 0; i < descriptor.method_count(); ++i) {
      const google::protobuf::MethodDescriptor& method = *descriptor.method(i);
      // gRPC keeps the name's pointer: the deque never moves its strings.
      const std::string& name = names_.emplace_back(
          absl::StrCat("/", descriptor.full_name(), "/", std::string(method.name())));
      AddMethod(new grpc::internal::RpcServiceMethod(
          name.c_str(), MethodType(method),
          new GuardedHandler(gate, name, HandlerOf::Get(inner, i))));
    }
  }

 private:
  std::deque<std::string> names_;
};

// The refusal code of a call the gate refused: in the ledger entry and the metrics alike.
std::string_view GateRefusalCode(const absl::Status& refusal) {
  return refusal.code() == absl::StatusCode::kUnauthenticated ? Metrics::kCallerUnauthenticated
                                                              : Metrics::kCallerNotPermitted;
}

// Who a refused caller is, for the ledger and the per-caller limit.
std::string CallerKey(const grpc::ServerContext& context) {
  if (auto identity = TlsClientIdentity(context)) return "tls:" + *identity;
  std::string peer = context.peer();
  // "ipv4:127.0.0.1:51234": the port changes with every connection, the caller does not.
  if (auto colon = peer.rfind(':'); colon != std::string::npos && colon > peer.find(':')) {
    peer.resize(colon);
  }
  return "peer:" + peer;
}

}  // namespace

const std::string& AdmittedCaller() {
  static const std::string* const kNobody = new std::string();
  return admitted_caller != nullptr ? *admitted_caller : *kNobody;
}

CallGate::CallGate(Members members, AuditLog* audit, Metrics* metrics)
    : operators_("operator", std::move(members.operators)),
      auditors_("auditor", std::move(members.auditors)),
      audit_(audit),
      metrics_(metrics) {
  if (members.routers) routers_.emplace("router", std::move(*members.routers));
}

absl::StatusOr<std::unique_ptr<grpc::Service>> CallGate::Guard(grpc::Service& service,
                                                               const std::string& full_name) {
  const google::protobuf::ServiceDescriptor* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(full_name);
  if (descriptor == nullptr) {
    return absl::InternalError(absl::StrCat("no service ", full_name, " in the descriptor pool"));
  }
  for (int i = 0; i < descriptor->method_count(); ++i) {
    const std::string method =
        absl::StrCat("/", full_name, "/", std::string(descriptor->method(i)->name()));
    if (!RequiredRole(method)) {
      spdlog::warn("{} is not in the access policy: every call to it is refused", method);
    }
  }
  return std::unique_ptr<grpc::Service>(new GuardedService(*this, service, *descriptor));
}

absl::StatusOr<std::string> CallGate::Admit(std::string_view method,
                                            const grpc::ServerContext& context) const {
  const std::optional<CallerRole> role = RequiredRole(method);
  if (!role) {
    return absl::PermissionDeniedError(
        absl::StrCat(std::string(method), " is not in the access policy, so nobody may call it"));
  }
  switch (*role) {
    case CallerRole::kOpen:
    case CallerRole::kWarrant:
      return std::string();
    case CallerRole::kOperator:
      return operators_.Admit(context);
    case CallerRole::kAuditor:
      return auditors_.Admit(context);
    case CallerRole::kRouter:
      if (!routers_) return std::string();
      return routers_->Admit(context);
  }
  return absl::PermissionDeniedError("unknown role");
}

std::optional<uint64_t> CallGate::RecordRefusal(std::string_view method,
                                                const grpc::ServerContext& context,
                                                const absl::Status& refusal) {
  // Counted whether or not the ledger gets it: the per-caller and rate limits bound the
  // ledger, not what monitoring sees.
  if (metrics_ != nullptr) metrics_->CallRefused(GateRefusalCode(refusal));
  const std::string caller = CallerKey(context);
  uint64_t earlier_not_recorded = 0;
  {
    std::lock_guard lock(windows_mutex_);
    const absl::Time now = absl::Now();
    auto it = windows_.find(caller);
    if (it == windows_.end()) {
      // Forget callers whose window is over before tracking a new one; if every tracked
      // caller is still in its window, the new one is not recorded (only logged).
      if (windows_.size() >= kMaxTrackedCallers) {
        std::erase_if(windows_, [&](const auto& entry) {
          return now - entry.second.start >= kRefusalWindow;
        });
      }
      if (windows_.size() >= kMaxTrackedCallers) {
        spdlog::warn("refused {} for {} (not recorded: too many refused callers at once): {}",
                     std::string(method), caller, std::string(refusal.message()));
        return std::nullopt;
      }
      it = windows_.emplace(caller, CallerWindow{now}).first;
    }
    CallerWindow& window = it->second;
    if (now - window.start >= kRefusalWindow) {
      window.start = now;
      window.recorded = 0;
    }
    if (window.recorded >= kRefusalsPerCallerPerWindow || audit_ == nullptr) {
      ++window.not_recorded;
      spdlog::warn("refused {} for {}: {}", std::string(method), caller,
                   std::string(refusal.message()));
      return std::nullopt;
    }
    ++window.recorded;
    earlier_not_recorded = std::exchange(window.not_recorded, 0);
  }
  v1::LedgerEntry entry;
  entry.set_time_unix_micros(NowMicros());
  entry.set_kind(v1::ENTRY_KIND_REFUSAL);
  entry.set_outcome(v1::OUTCOME_REFUSED);
  if (auto identity = TlsClientIdentity(context)) {
    entry.mutable_investigator()->set_tls_identity(*identity);
  }
  v1::Refusal* out = entry.mutable_refusal();
  out->set_code(std::string(GateRefusalCode(refusal)));
  std::string message =
      absl::StrCat(std::string(method), " refused for ", caller, ": ", refusal.message());
  if (earlier_not_recorded > 0) {
    absl::StrAppend(&message, " [", earlier_not_recorded,
                    " earlier refusals of this caller not recorded: over its limit]");
  }
  out->set_message(message);
  auto receipt = audit_->AppendRefusal(entry, RefusalSource{caller, false});
  if (!receipt.ok()) {
    spdlog::error("refused {} for {}, not recorded: {}", std::string(method), caller,
                  std::string(receipt.status().message()));
    return std::nullopt;
  }
  if (!receipt->has_value()) return std::nullopt;  // over the ledger's refusal rate limit
  return (*receipt)->index;
}

}  // namespace probity::service
