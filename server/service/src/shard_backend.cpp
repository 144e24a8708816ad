#include "probity/service/shard_backend.h"

#include <grpcpp/grpcpp.h>
#include <omp.h>

#include "absl/strings/str_cat.h"
#include "probity/service/grpc_status.h"
#include "probity/v1/shard.grpc.pb.h"

namespace probity::service {

absl::StatusOr<ShardAnswer> SearchLocalShard(const Catalog& catalog, const ShardQuery& query,
                                             int omp_threads, ShardCounters& counters) {
  std::shared_ptr<LoadedCollection> collection = catalog.Get(query.collection);
  if (collection == nullptr) {
    return absl::NotFoundError(absl::StrCat("no collection ", query.collection, " here"));
  }
  if (query.shard < 0 || query.shard >= collection->index->num_shards()) {
    return absl::NotFoundError(
        absl::StrCat("collection ", query.collection, " has no shard ", query.shard));
  }
  if (query.dim != collection->index->spec().dim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "query dimension ", query.dim, " != collection dimension ", collection->index->spec().dim));
  }
  // The OpenMP thread count is per calling thread, so it is set on each search's own thread:
  // concurrent requests then share the cores instead of each spawning one thread per core.
  omp_set_num_threads(omp_threads);
  counters.searches_run.fetch_add(1);
  auto hits = collection->index->SearchShard(query.shard, query.queries, query.params);
  if (!hits.ok()) return hits.status();
  return ShardAnswer{std::move(*hits), collection->generation};
}

namespace {

class LocalShardBackend : public ShardBackend {
 public:
  LocalShardBackend(const Catalog& catalog, int omp_threads, ShardCounters& counters)
      : catalog_(catalog), omp_threads_(omp_threads), counters_(counters) {}

  absl::StatusOr<ShardAnswer> Search(const ShardQuery& query, absl::Time /*deadline*/) override {
    return SearchLocalShard(catalog_, query, omp_threads_, counters_);
  }
  std::string Describe() const override { return "local"; }

 private:
  const Catalog& catalog_;
  int omp_threads_;
  ShardCounters& counters_;
};

class RemoteShardBackend : public ShardBackend {
 public:
  RemoteShardBackend(std::string address, std::shared_ptr<grpc::Channel> channel)
      : address_(std::move(address)), stub_(v1::Shard::NewStub(std::move(channel))) {}

  absl::StatusOr<ShardAnswer> Search(const ShardQuery& query, absl::Time deadline) override {
    v1::ShardSearchRequest request;
    request.set_collection(query.collection);
    request.set_shard(query.shard);
    request.set_dim(query.dim);
    request.mutable_queries()->Add(query.queries.begin(), query.queries.end());
    request.set_k(query.params.k);
    request.set_nprobe(query.params.nprobe);
    if (query.params.min_score) request.set_min_score(*query.params.min_score);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    v1::ShardSearchResponse response;
    grpc::Status status = stub_->SearchShard(&context, request, &response);
    if (!status.ok()) {
      absl::Status converted = FromGrpcStatus(status);
      return absl::Status(converted.code(),
                          absl::StrCat("shard server ", address_, ": ", converted.message()));
    }
    ShardAnswer answer;
    answer.generation = response.index_generation();
    for (const v1::ShardHitList& list : response.results()) {
      index::HitList hits;
      for (const v1::ShardHit& hit : list.hits()) {
        hits.push_back({hit.id(), hit.score(), static_cast<uint32_t>(query.shard)});
      }
      answer.hits.push_back(std::move(hits));
    }
    if (answer.hits.size() * query.dim != query.queries.size()) {
      return absl::InternalError(
          absl::StrCat("shard server ", address_, " answered the wrong number of queries"));
    }
    return answer;
  }
  std::string Describe() const override { return address_; }

  absl::StatusOr<int64_t> Erase(const std::string& collection, const std::vector<int64_t>& ids,
                                const std::string& reason) override {
    v1::ShardEraseRequest request;
    request.set_collection(collection);
    request.mutable_ids()->Add(ids.begin(), ids.end());
    request.set_reason(reason);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::ShardEraseResponse response;
    grpc::Status status = stub_->Erase(&context, request, &response);
    if (!status.ok()) {
      absl::Status converted = FromGrpcStatus(status);
      return absl::Status(converted.code(),
                          absl::StrCat("shard server ", address_, ": ", converted.message()));
    }
    return response.removed();
  }

 private:
  std::string address_;
  std::unique_ptr<v1::Shard::Stub> stub_;
};

}  // namespace

std::unique_ptr<ShardBackend> MakeLocalShardBackend(const Catalog& catalog, int omp_threads,
                                                    ShardCounters& counters) {
  return std::make_unique<LocalShardBackend>(catalog, omp_threads, counters);
}

std::unique_ptr<ShardBackend> MakeRemoteShardBackend(std::string address,
                                                     std::shared_ptr<grpc::Channel> channel) {
  return std::make_unique<RemoteShardBackend>(std::move(address), std::move(channel));
}

}  // namespace probity::service
