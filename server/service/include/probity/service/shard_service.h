#pragma once

// What a `probity shard` server offers the router: searches of the shards it holds. Shard
// servers skip the warrant check; callers reach the handlers only through the CallGate, which
// admits the configured routers alone.

#include <filesystem>
#include <mutex>

#include "probity/service/catalog.h"
#include "probity/service/shard_backend.h"
#include "probity/v1/shard.grpc.pb.h"

namespace probity::service {

class ShardServiceImpl final : public v1::Shard::Service {
 public:
  // `shards` searches the catalog's shards (the local backend, batched if configured). Only
  // routers reach this service: the call gate admits no one else.
  ShardServiceImpl(const Catalog& catalog, std::shared_ptr<ShardBackend> shards,
                   ShardCounters& counters, std::filesystem::path state_dir)
      : catalog_(catalog),
        shards_(std::move(shards)),
        counters_(counters),
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
  std::filesystem::path state_dir_;
  std::mutex erase_mutex_;
};

}  // namespace probity::service
