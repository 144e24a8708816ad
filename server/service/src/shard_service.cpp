#include "probity/service/shard_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "probity/service/grpc_status.h"

namespace probity::service {

grpc::Status ShardServiceImpl::SearchShard(grpc::ServerContext* context,
                                           const v1::ShardSearchRequest* request,
                                           v1::ShardSearchResponse* response) {
  if (routers_) {
    if (auto who = routers_->Admit(*context); !who.ok()) return ToGrpcStatus(who.status());
  }
  std::shared_ptr<LoadedCollection> collection = catalog_.Get(request->collection());
  if (collection == nullptr ||
      std::find(collection->held_shards.begin(), collection->held_shards.end(),
                static_cast<int>(request->shard())) == collection->held_shards.end()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("shard ", request->shard(), " of ", request->collection(),
                                     " is not held here"));
  }
  if (request->dim() == 0 || request->queries_size() % request->dim() != 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "queries are not nq x dim");
  }
  ShardQuery query;
  query.collection = request->collection();
  query.shard = static_cast<int>(request->shard());
  query.dim = static_cast<int>(request->dim());
  query.queries = std::span<const float>(request->queries().data(), request->queries_size());
  query.params.k = static_cast<int>(request->k());
  query.params.nprobe = static_cast<int>(request->nprobe());
  if (request->has_min_score()) query.params.min_score = request->min_score();
  query.metric = collection->index->spec().metric;
  const auto deadline = context->deadline();
  auto answer = shards_->Search(query, deadline == std::chrono::system_clock::time_point::max()
                                           ? absl::InfiniteFuture()
                                           : absl::FromChrono(deadline));
  if (!answer.ok()) return ToGrpcStatus(answer.status());
  response->set_index_generation(answer->generation);
  for (const index::HitList& hits : answer->hits) {
    v1::ShardHitList* list = response->add_results();
    for (const index::Hit& hit : hits) {
      v1::ShardHit* out = list->add_hits();
      out->set_id(hit.id);
      out->set_score(hit.score);
    }
  }
  return grpc::Status::OK;
}

grpc::Status ShardServiceImpl::Info(grpc::ServerContext* context,
                                    const v1::ShardInfoRequest* /*request*/,
                                    v1::ShardInfoResponse* response) {
  if (routers_) {
    if (auto who = routers_->Admit(*context); !who.ok()) return ToGrpcStatus(who.status());
  }
  for (const auto& collection : catalog_.List()) {
    for (int shard : collection->held_shards) {
      v1::HeldShard* held = response->add_shards();
      held->set_collection(collection->name);
      held->set_shard(shard);
      held->set_shards_total(collection->index->num_shards());
      held->set_metric(index::MetricName(collection->index->spec().metric));
      held->set_dim(collection->index->spec().dim);
      held->set_vectors(collection->index->ShardSize(shard));
      held->set_index_generation(collection->generation);
    }
  }
  response->set_searches_run(counters_.searches_run.load());
  return grpc::Status::OK;
}

grpc::Status ShardServiceImpl::Erase(grpc::ServerContext* context,
                                     const v1::ShardEraseRequest* request,
                                     v1::ShardEraseResponse* response) {
  if (routers_) {
    if (auto who = routers_->Admit(*context); !who.ok()) return ToGrpcStatus(who.status());
  }
  std::shared_ptr<LoadedCollection> collection = catalog_.Get(request->collection());
  if (collection == nullptr) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("no collection ", request->collection(), " here"));
  }
  std::lock_guard lock(erase_mutex_);
  const std::vector<int64_t> ids(request->ids().begin(), request->ids().end());
  // Journalled before it is applied, so an acknowledged erasure survives a crash and a restart.
  if (auto status = AppendErasures(state_dir_ / (request->collection() + ".erased"), ids);
      !status.ok()) {
    return ToGrpcStatus(status);
  }
  auto removed = collection->index->Remove(ids);
  if (!removed.ok()) return ToGrpcStatus(removed.status());
  response->set_removed(*removed);
  return grpc::Status::OK;
}

}  // namespace probity::service
