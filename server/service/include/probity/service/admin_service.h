#pragma once

// The operator's Admin API. Every state change is recorded before it is made: an ADMIN entry
// with outcome REQUESTED is appended first (if that fails nothing changes and the call answers
// UNAVAILABLE), then the change is applied, then an ADMIN entry with its outcome (APPLIED or
// FAILED) is appended. Callers reach the handlers only through the CallGate, which admits
// operators alone.

#include <filesystem>
#include <mutex>

#include "probity/service/audit_log.h"
#include "probity/service/catalog.h"
#include "probity/service/collection_state.h"
#include "probity/service/router.h"
#include "probity/service/service_counters.h"
#include "probity/service/shard_backend.h"
#include "probity/v1/admin.grpc.pb.h"
#include "probity/warrant/warrant.h"

namespace probity::service {

class AdminServiceImpl final : public v1::Admin::Service {
 public:
  struct Deps {
    Catalog* catalog = nullptr;  // null in router mode: no local shards to change
    Router* router = nullptr;
    AuditLog* audit = nullptr;
    warrant::Verifier* verifier = nullptr;
    ServiceCounters* counters = nullptr;
    CollectionState state;
    std::filesystem::path data_dir;
    std::shared_ptr<ShardBackend> local_shards;  // searches this process's shards
  };
  explicit AdminServiceImpl(Deps deps) : deps_(std::move(deps)) {}

  grpc::Status ListCollections(grpc::ServerContext* context,
                               const v1::ListCollectionsRequest* request,
                               v1::ListCollectionsResponse* response) override;
  grpc::Status Stats(grpc::ServerContext* context, const v1::StatsRequest* request,
                     v1::StatsResponse* response) override;
  grpc::Status AddVectors(grpc::ServerContext* context,
                          grpc::ServerReader<v1::AddVectorsRequest>* reader,
                          v1::AddVectorsResponse* response) override;
  grpc::Status Erase(grpc::ServerContext* context, const v1::EraseRequest* request,
                     v1::EraseResponse* response) override;
  grpc::Status LoadGeneration(grpc::ServerContext* context,
                              const v1::LoadGenerationRequest* request,
                              v1::LoadGenerationResponse* response) override;
  grpc::Status ReloadKeys(grpc::ServerContext* context, const v1::ReloadKeysRequest* request,
                          v1::ReloadKeysResponse* response) override;

 private:
  // One admin action as the ledger names it.
  struct Action {
    Action(std::string operator_name, std::string name, std::string reason,
           std::string collection = "", std::vector<int64_t> ids = {})
        : operator_name(std::move(operator_name)),
          name(std::move(name)),
          reason(std::move(reason)),
          collection(std::move(collection)),
          ids(std::move(ids)) {}
    std::string operator_name;
    std::string name;  // "add", "erase", "swap_generation", "reload_keys"
    std::string reason;
    std::string collection;
    std::vector<int64_t> ids;
    uint64_t request_index = 0;  // set by RecordRequest
  };
  // Appends the REQUESTED entry. An error means it is not in the ledger: change nothing.
  absl::Status RecordRequest(Action& action, const std::string& detail);
  // Appends the outcome entry (APPLIED when `result` is OK, else FAILED with its message) and
  // returns its index. An error means the change stays as `result` says but only its request
  // entry is in the ledger.
  absl::StatusOr<uint64_t> RecordOutcome(const Action& action, const absl::Status& result,
                                         const std::string& detail);
  absl::StatusOr<std::shared_ptr<LoadedCollection>> LocalCollection(const std::string& name);
  absl::Status Publish(std::shared_ptr<LoadedCollection> collection);
  // Serves `collection`'s generation as it is on disk again (after a failed AddVectors).
  absl::Status ServeFromDisk(const LoadedCollection& collection);
  grpc::Status EraseOnShardServers(Action& action, const v1::EraseRequest& request,
                                   v1::EraseResponse* response);

  Deps deps_;
  std::mutex mutation_mutex_;  // one index-changing admin action at a time
};

}  // namespace probity::service
