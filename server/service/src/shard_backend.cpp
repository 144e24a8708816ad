#include "probity/service/shard_backend.h"

#include <grpcpp/grpcpp.h>
#include <omp.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "elapsed_micros.h"
#include "probity/service/grpc_status.h"
#include "probity/v1/shard.grpc.pb.h"

namespace probity::service {

namespace {

// The collection a local search reads, after checking that it holds `shards` and that the
// queries have its dimension.
absl::StatusOr<std::shared_ptr<LoadedCollection>> CollectionFor(const Catalog& catalog,
                                                                const ShardQuery& query,
                                                                std::span<const int> shards) {
  std::shared_ptr<LoadedCollection> collection = catalog.Get(query.collection);
  if (collection == nullptr) {
    return absl::NotFoundError(absl::StrCat("no collection ", query.collection, " here"));
  }
  for (int shard : shards) {
    if (shard < 0 || shard >= collection->index->num_shards()) {
      return absl::NotFoundError(
          absl::StrCat("collection ", query.collection, " has no shard ", shard));
    }
  }
  if (query.dim != collection->index->spec().dim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "query dimension ", query.dim, " != collection dimension ", collection->index->spec().dim));
  }
  return collection;
}

}  // namespace

absl::StatusOr<ShardAnswer> SearchLocalShard(const Catalog& catalog, const ShardQuery& query,
                                             int omp_threads, ShardCounters& counters) {
  const int shard = query.shard;
  auto collection = CollectionFor(catalog, query, std::span<const int>(&shard, 1));
  if (!collection.ok()) return collection.status();
  // The OpenMP thread count is per calling thread, so it is set on each search's own thread:
  // concurrent requests then share the cores instead of each spawning one thread per core.
  omp_set_num_threads(omp_threads);
  counters.searches_run.fetch_add(1);
  const absl::Time started = absl::Now();
  auto hits = (*collection)->index->SearchShard(shard, query.queries, query.params);
  internal::AddMicrosSince(started, counters.search_micros);
  if (!hits.ok()) return hits.status();
  return ShardAnswer{std::move(*hits), (*collection)->generation};
}

absl::StatusOr<std::vector<ShardAnswer>> SearchLocalShards(const Catalog& catalog,
                                                           const ShardQuery& query,
                                                           std::span<const int> shards,
                                                           int omp_threads,
                                                           ShardCounters& counters) {
  auto collection = CollectionFor(catalog, query, shards);
  if (!collection.ok()) return collection.status();
  omp_set_num_threads(omp_threads);
  counters.searches_run.fetch_add(shards.size());
  const absl::Time started = absl::Now();
  auto per_shard = (*collection)->index->SearchShards(shards, query.queries, query.params);
  internal::AddMicrosSince(started, counters.search_micros);
  if (!per_shard.ok()) return per_shard.status();
  std::vector<ShardAnswer> answers;
  answers.reserve(per_shard->size());
  for (std::vector<index::HitList>& hits : *per_shard) {
    answers.push_back(ShardAnswer{std::move(hits), (*collection)->generation});
  }
  return answers;
}

namespace {

class LocalShardBackend : public ShardBackend {
 public:
  LocalShardBackend(const Catalog& catalog, int omp_threads, ShardCounters& counters)
      : catalog_(catalog), omp_threads_(omp_threads), counters_(counters) {}

  absl::StatusOr<ShardAnswer> Search(const ShardQuery& query, absl::Time /*deadline*/) override {
    return SearchLocalShard(catalog_, query, omp_threads_, counters_);
  }
  bool SearchesShardsTogether() const override { return true; }
  absl::StatusOr<std::vector<ShardAnswer>> SearchShards(const ShardQuery& query,
                                                        std::span<const int> shards,
                                                        absl::Time /*deadline*/) override {
    return SearchLocalShards(catalog_, query, shards, omp_threads_, counters_);
  }
  std::string Describe() const override { return "local"; }

 private:
  const Catalog& catalog_;
  int omp_threads_;
  ShardCounters& counters_;
};

v1::ShardSearchRequest ToShardRequest(const ShardQuery& query) {
  v1::ShardSearchRequest request;
  request.set_collection(query.collection);
  request.set_shard(query.shard);
  request.set_dim(query.dim);
  request.mutable_queries()->Add(query.queries.begin(), query.queries.end());
  request.set_k(query.params.k);
  request.set_nprobe(query.params.nprobe);
  if (query.params.min_score) request.set_min_score(*query.params.min_score);
  return request;
}

absl::StatusOr<ShardAnswer> FromShardResponse(const std::string& address, int shard,
                                              size_t num_queries, const grpc::Status& status,
                                              const v1::ShardSearchResponse& response) {
  if (!status.ok()) {
    absl::Status converted = FromGrpcStatus(status);
    return absl::Status(converted.code(),
                        absl::StrCat("shard server ", address, ": ", converted.message()));
  }
  ShardAnswer answer;
  answer.generation = response.index_generation();
  for (const v1::ShardHitList& list : response.results()) {
    index::HitList hits;
    for (const v1::ShardHit& hit : list.hits()) {
      hits.push_back({hit.id(), hit.score(), static_cast<uint32_t>(shard)});
    }
    answer.hits.push_back(std::move(hits));
  }
  if (answer.hits.size() != num_queries) {
    return absl::InternalError(
        absl::StrCat("shard server ", address, " answered the wrong number of queries"));
  }
  return answer;
}

// One asynchronous SearchShard call: owns what gRPC reads and writes until it completes, and is
// kept alive by both the caller's handle and gRPC's callback, so Cancel() is safe at any time.
class RemoteShardCall : public ShardCall {
 public:
  void Cancel() override { context.TryCancel(); }

  grpc::ClientContext context;
  v1::ShardSearchRequest request;
  v1::ShardSearchResponse response;
};

class RemoteShardBackend : public ShardBackend {
 public:
  RemoteShardBackend(std::string address, std::shared_ptr<grpc::Channel> channel)
      : address_(std::move(address)), stub_(v1::Shard::NewStub(std::move(channel))) {}

  absl::StatusOr<ShardAnswer> Search(const ShardQuery& query, absl::Time deadline) override {
    v1::ShardSearchRequest request = ToShardRequest(query);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    v1::ShardSearchResponse response;
    grpc::Status status = stub_->SearchShard(&context, request, &response);
    return FromShardResponse(address_, query.shard, query.queries.size() / query.dim, status,
                             response);
  }

  std::shared_ptr<ShardCall> StartSearch(const ShardQuery& query, absl::Time deadline,
                                         ShardSearchDone done) override {
    auto call = std::make_shared<RemoteShardCall>();
    call->request = ToShardRequest(query);
    call->context.set_deadline(absl::ToChronoTime(deadline));
    const size_t num_queries = query.queries.size() / query.dim;
    stub_->async()->SearchShard(
        &call->context, &call->request, &call->response,
        [call, address = address_, shard = query.shard, num_queries,
         done = std::move(done)](grpc::Status status) {
          done(FromShardResponse(address, shard, num_queries, status, call->response));
        });
    return call;
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

std::shared_ptr<grpc::Channel> MakeShardChannel(
    const std::string& address, const std::shared_ptr<grpc::ChannelCredentials>& credentials,
    absl::Duration max_reconnect_backoff) {
  const int max_ms = static_cast<int>(
      std::clamp<int64_t>(absl::ToInt64Milliseconds(max_reconnect_backoff), 1, 3'600'000));
  grpc::ChannelArguments arguments;
  arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, std::min(100, max_ms));
  arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_ms);
  // Despite its name, this is how long one connection attempt may take to reach a working
  // HTTP/2 connection (TCP, TLS and the first SETTINGS exchange), not a backoff. At 100 ms,
  // every early attempt over a slower link timed out and started over on a new connection.
  arguments.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
                   static_cast<int>(absl::ToInt64Milliseconds(kShardConnectTimeout)));
  return grpc::CreateCustomChannel(address, credentials, arguments);
}

}  // namespace probity::service
