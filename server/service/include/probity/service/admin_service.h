#pragma once

// The operator's Admin API. Every state change is an admin entry in the ledger.

#include <filesystem>
#include <mutex>

#include "probity/service/audit_log.h"
#include "probity/service/auth.h"
#include "probity/service/catalog.h"
#include "probity/service/router.h"
#include "probity/service/search_service.h"
#include "probity/v1/admin.grpc.pb.h"
#include "probity/warrant/warrant.h"

namespace probity::service {

// Where each collection's serving generation is remembered across restarts, and where its
// erasures are journalled.
struct CollectionState {
  std::filesystem::path state_dir;
  std::filesystem::path ErasureJournal(const std::string& collection) const {
    return state_dir / (collection + ".erased");
  }
  std::filesystem::path GenerationFile(const std::string& collection) const {
    return state_dir / (collection + ".generation");
  }
};

// Makes the router's route for a locally served collection (all shards on `local_shards`).
CollectionRoute LocalRoute(const LoadedCollection& collection,
                           std::shared_ptr<ShardBackend> local_shards);

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
  AdminServiceImpl(Deps deps, RoleGate operators)
      : deps_(std::move(deps)), operators_(std::move(operators)) {}

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
  absl::StatusOr<uint64_t> Record(const std::string& operator_name, const std::string& action,
                                  const std::string& reason, const std::vector<int64_t>& ids,
                                  const std::string& collection, const std::string& detail);
  absl::StatusOr<std::shared_ptr<LoadedCollection>> LocalCollection(const std::string& name);
  absl::Status Publish(std::shared_ptr<LoadedCollection> collection);
  grpc::Status EraseOnShardServers(const std::string& operator_name,
                                   const v1::EraseRequest& request, v1::EraseResponse* response);

  Deps deps_;
  RoleGate operators_;
  std::mutex mutation_mutex_;  // one index-changing admin action at a time
};

}  // namespace probity::service
