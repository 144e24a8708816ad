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
  ShardServiceImpl(const Catalog& catalog, int omp_threads, ShardCounters& counters,
                   std::filesystem::path state_dir)
      : catalog_(catalog),
        omp_threads_(omp_threads),
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
  int omp_threads_;
  ShardCounters& counters_;
  std::filesystem::path state_dir_;
  std::mutex erase_mutex_;
};

}  // namespace probity::service
