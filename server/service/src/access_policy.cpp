#include "probity/service/access_policy.h"

#include <algorithm>

namespace probity::service {

const std::vector<std::pair<std::string_view, CallerRole>>& AccessPolicyTable() {
  static const auto* table = new std::vector<std::pair<std::string_view, CallerRole>>{
      {"/probity.v1.Search/Search", CallerRole::kWarrant},
      // The investigator's review of a search's candidates: the service checks the warrant.
      {"/probity.v1.ReviewService/RecordReview", CallerRole::kWarrant},
      {"/probity.v1.Admin/ListCollections", CallerRole::kOperator},
      {"/probity.v1.Admin/Stats", CallerRole::kOperator},
      {"/probity.v1.Admin/AddVectors", CallerRole::kOperator},
      {"/probity.v1.Admin/Erase", CallerRole::kOperator},
      {"/probity.v1.Admin/LoadGeneration", CallerRole::kOperator},
      {"/probity.v1.Admin/ReloadKeys", CallerRole::kOperator},
      {"/probity.v1.Ledger/GetCheckpoint", CallerRole::kAuditor},
      {"/probity.v1.Ledger/GetEntries", CallerRole::kAuditor},
      {"/probity.v1.Ledger/GetInclusionProof", CallerRole::kAuditor},
      {"/probity.v1.Ledger/GetConsistencyProof", CallerRole::kAuditor},
      {"/probity.v1.Shard/SearchShard", CallerRole::kRouter},
      {"/probity.v1.Shard/Info", CallerRole::kRouter},
      {"/probity.v1.Shard/Erase", CallerRole::kRouter},
      // Served by gRPC itself (not through the CallGate): open by design.
      {"/grpc.health.v1.Health/Check", CallerRole::kOpen},
      {"/grpc.health.v1.Health/Watch", CallerRole::kOpen},
      {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", CallerRole::kOpen},
  };
  return *table;
}

std::optional<CallerRole> RequiredRole(std::string_view method) {
  const auto& table = AccessPolicyTable();
  auto it = std::find_if(table.begin(), table.end(),
                         [&](const auto& entry) { return entry.first == method; });
  if (it == table.end()) return std::nullopt;
  return it->second;
}

std::string_view CallerRoleName(CallerRole role) {
  switch (role) {
    case CallerRole::kOpen:
      return "anyone";
    case CallerRole::kWarrant:
      return "warrant holder";
    case CallerRole::kOperator:
      return "operator";
    case CallerRole::kAuditor:
      return "auditor";
    case CallerRole::kRouter:
      return "router";
  }
  return "unknown";
}

}  // namespace probity::service
