#pragma once

// What a `probity shard` server offers the router: searches of the shards it holds.

#include <filesystem>
#include <mutex>
#include <optional>

#include "probity/service/auth.h"
#include "probity/service/catalog.h"
#include "probity/service/shard_backend.h"
#include "probity/v1/shard.grpc.pb.h"

namespace probity::service {

class ShardServiceImpl final : public v1::Shard::Service {
 public:
  // `routers`: when set, only these callers are served (shard servers skip the warrant check,
  // so nobody else may reach them).
  // `shards` searches the catalog's shards (the local backend, batched if configured).
  ShardServiceImpl(const Catalog& catalog, std::shared_ptr<ShardBackend> shards,
                   ShardCounters& counters, std::optional<RoleGate> routers,
                   std::filesystem::path state_dir)
      : catalog_(catalog),
        shards_(std::move(shards)),
        counters_(counters),
        routers_(std::move(routers)),
        state_dir_(std::move(state_dir)) {}

  grpc::Status SearchShard(grpc::ServerContext* context, const v1::ShardSearchRequest* request,
                           v1::ShardSearchResponse* response) override;
  grpc::Status Info(grpc::ServerContext* context, const v1::ShardInfoRequest* request,
                    v1::ShardInfoResponse* response) override;
  grpc::Status Erase(grpc::ServerContext* context, const v1::ShardEraseRequest* request,
                     v1::ShardEraseResponse* response) override;

 private:
  const Catalog& catalog_;
  std::shared_ptr<ShardBackend> shards_;
  ShardCounters& counters_;
  std::optional<RoleGate> routers_;
  std::filesystem::path state_dir_;
  std::mutex erase_mutex_;
};

}  // namespace probity::service
