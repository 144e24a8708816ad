#include "probity/service/admin_service.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "probity/index/generation.h"
#include "probity/service/grpc_status.h"

namespace probity::service {
namespace {

constexpr int64_t kMaxVectorsPerStream = 1 << 22;

absl::Status WriteTextFileAtomically(const std::filesystem::path& file, const std::string& text) {
  std::error_code ec;
  std::filesystem::create_directories(file.parent_path(), ec);
  const std::filesystem::path temp = file.string() + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << text;
    if (!out.flush()) return absl::UnavailableError("cannot write " + temp.string());
  }
  std::filesystem::rename(temp, file, ec);
  if (ec) return absl::UnavailableError("cannot rename " + temp.string() + ": " + ec.message());
  return absl::OkStatus();
}

}  // namespace

CollectionRoute LocalRoute(const LoadedCollection& collection,
                           std::shared_ptr<ShardBackend> local_shards) {
  CollectionRoute route;
  route.name = collection.name;
  route.metric = collection.index->spec().metric;
  route.dim = collection.index->spec().dim;
  route.replicas.assign(collection.index->num_shards(), {std::move(local_shards)});
  return route;
}

absl::StatusOr<uint64_t> AdminServiceImpl::Record(
    const std::string& operator_name, const std::string& action, const std::string& reason,
    const std::vector<int64_t>& ids, const std::string& collection, const std::string& detail) {
  v1::LedgerEntry entry;
  entry.set_time_unix_micros(NowMicros());
  entry.set_kind(v1::ENTRY_KIND_ADMIN);
  entry.set_outcome(v1::OUTCOME_APPLIED);
  if (!collection.empty()) entry.add_collections(collection);
  v1::AdminAction* admin = entry.mutable_admin();
  admin->set_action(action);
  admin->set_operator_(operator_name);
  admin->set_reason(reason);
  admin->mutable_ids()->Add(ids.begin(), ids.end());
  admin->set_detail(detail);
  auto receipt = deps_.audit->Append(entry);
  if (!receipt.ok()) {
    spdlog::error("admin action {} applied but not recorded: {}", action,
                  std::string(receipt.status().message()));
    return absl::UnavailableError(absl::StrCat("the ledger could not record the ", action,
                                               " action: ", receipt.status().message()));
  }
  return receipt->index;
}

absl::StatusOr<std::shared_ptr<LoadedCollection>> AdminServiceImpl::LocalCollection(
    const std::string& name) {
  if (deps_.catalog == nullptr) {
    return absl::FailedPreconditionError(
        "this router holds no shards; change collections on the shard servers");
  }
  auto collection = deps_.catalog->Get(name);
  if (collection == nullptr) return absl::NotFoundError("no collection named " + name);
  return collection;
}

absl::Status AdminServiceImpl::Publish(std::shared_ptr<LoadedCollection> collection) {
  auto status = WriteTextFileAtomically(deps_.state.GenerationFile(collection->name),
                                        collection->generation_dir.string() + "\n");
  if (!status.ok()) return status;
  deps_.catalog->Put(collection);
  deps_.router->SetRoute(LocalRoute(*collection, deps_.local_shards));
  return absl::OkStatus();
}

grpc::Status AdminServiceImpl::ListCollections(grpc::ServerContext* context,
                                               const v1::ListCollectionsRequest* /*request*/,
                                               v1::ListCollectionsResponse* response) {
  if (auto who = operators_.Admit(*context); !who.ok()) return ToGrpcStatus(who.status());
  if (deps_.catalog != nullptr) {
    for (const auto& collection : deps_.catalog->List()) {
      v1::CollectionInfo* info = response->add_collections();
      info->set_name(collection->name);
      info->set_factory(collection->index->spec().factory);
      info->set_metric(index::MetricName(collection->index->spec().metric));
      info->set_dim(collection->index->spec().dim);
      info->set_shards_total(collection->index->num_shards());
      info->set_vectors(collection->index->TotalSize());
      info->set_index_generation(collection->generation);
    }
    return grpc::Status::OK;
  }
  for (const std::string& name : deps_.router->Collections()) {
    auto route = deps_.router->Route(name);
    if (!route) continue;
    v1::CollectionInfo* info = response->add_collections();
    info->set_name(name);
    info->set_metric(index::MetricName(route->metric));
    info->set_dim(route->dim);
    info->set_shards_total(route->replicas.size());
  }
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::Stats(grpc::ServerContext* context,
                                     const v1::StatsRequest* /*request*/,
                                     v1::StatsResponse* response) {
  if (auto who = operators_.Admit(*context); !who.ok()) return ToGrpcStatus(who.status());
  const ServiceCounters& counters = *deps_.counters;
  response->set_searches_answered(counters.searches_answered.load());
  response->set_searches_failed(counters.searches_failed.load());
  response->set_refusals(counters.refusals.load());
  response->set_shard_searches_run(counters.shards.searches_run.load());
  response->set_shard_searches_coalesced(counters.shards.searches_coalesced.load());
  response->set_ledger_size(deps_.audit->ledger().Size());
  response->set_in_flight(std::max<int64_t>(0, counters.in_flight.load()));
  response->set_refusals_not_recorded(deps_.audit->refusals_not_recorded());
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::AddVectors(grpc::ServerContext* context,
                                          grpc::ServerReader<v1::AddVectorsRequest>* reader,
                                          v1::AddVectorsResponse* response) {
  auto who = operators_.Admit(*context);
  if (!who.ok()) return ToGrpcStatus(who.status());
  std::string collection_name, reason;
  std::vector<float> vectors;
  std::vector<int64_t> ids;
  uint32_t dim = 0;
  v1::AddVectorsRequest message;
  while (reader->Read(&message)) {
    if (collection_name.empty()) {
      collection_name = message.collection();
      dim = message.dim();
      reason = message.reason();
    }
    if (message.dim() != 0 && message.dim() != dim) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "dim changed within the stream");
    }
    if (dim == 0 || message.vectors_size() != static_cast<int>(message.ids_size() * dim)) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "each message needs ids.size() x dim vector values");
    }
    if (static_cast<int64_t>(ids.size()) + message.ids_size() > kMaxVectorsPerStream) {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          absl::StrCat("at most ", kMaxVectorsPerStream, " vectors per stream"));
    }
    vectors.insert(vectors.end(), message.vectors().begin(), message.vectors().end());
    ids.insert(ids.end(), message.ids().begin(), message.ids().end());
  }
  std::lock_guard lock(mutation_mutex_);
  auto collection = LocalCollection(collection_name);
  if (!collection.ok()) return ToGrpcStatus(collection.status());
  if (static_cast<int>(dim) != (*collection)->index->spec().dim) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("collection dimension is ", (*collection)->index->spec().dim));
  }
  if (auto status = (*collection)->index->Add(vectors, ids); !status.ok()) {
    return ToGrpcStatus(status);
  }
  // The added vectors become a new generation on disk so that a restart keeps them.
  const int64_t next = std::stoll((*collection)->generation) + 1;
  const std::filesystem::path dir =
      deps_.state.state_dir / collection_name / absl::StrCat("gen-", next);
  if (auto status = index::WriteGeneration(*(*collection)->index, next, dir); !status.ok()) {
    return ToGrpcStatus(status);
  }
  auto updated = std::make_shared<LoadedCollection>(**collection);
  updated->generation = std::to_string(next);
  updated->generation_dir = dir;
  if (auto status = Publish(updated); !status.ok()) return ToGrpcStatus(status);
  auto index = Record(*who, "add", reason, {}, collection_name,
                      nlohmann::json{{"added", ids.size()}, {"generation", next}}.dump());
  if (!index.ok()) return ToGrpcStatus(index.status());
  response->set_added(static_cast<int64_t>(ids.size()));
  response->set_ledger_index(*index);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::Erase(grpc::ServerContext* context, const v1::EraseRequest* request,
                                     v1::EraseResponse* response) {
  auto who = operators_.Admit(*context);
  if (!who.ok()) return ToGrpcStatus(who.status());
  if (request->reason().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "an erasure needs a reason");
  }
  std::lock_guard lock(mutation_mutex_);
  const std::vector<int64_t> ids(request->ids().begin(), request->ids().end());
  if (deps_.catalog == nullptr) return EraseOnShardServers(*who, *request, response);
  auto collection = LocalCollection(request->collection());
  if (!collection.ok()) return ToGrpcStatus(collection.status());
  // Journal first: once the erasure is acknowledged it must survive a crash and a restart.
  if (auto status = AppendErasures(deps_.state.ErasureJournal(request->collection()), ids);
      !status.ok()) {
    return ToGrpcStatus(status);
  }
  auto removed = (*collection)->index->Remove(ids);
  if (!removed.ok()) return ToGrpcStatus(removed.status());
  auto index = Record(*who, "erase", request->reason(), ids, request->collection(),
                      nlohmann::json{{"removed", *removed}}.dump());
  if (!index.ok()) return ToGrpcStatus(index.status());
  response->set_removed(*removed);
  response->set_ledger_index(*index);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::EraseOnShardServers(const std::string& operator_name,
                                                   const v1::EraseRequest& request,
                                                   v1::EraseResponse* response) {
  auto route = deps_.router->Route(request.collection());
  if (!route) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no collection named " + request.collection());
  }
  // Every server holding any shard (every replica) must erase; each is asked once.
  std::vector<std::shared_ptr<ShardBackend>> servers;
  bool some_shard_unreachable = false;
  for (const auto& replicas : route->replicas) {
    some_shard_unreachable |= replicas.empty();
    for (const auto& backend : replicas) {
      if (std::find(servers.begin(), servers.end(), backend) == servers.end()) {
        servers.push_back(backend);
      }
    }
  }
  const std::vector<int64_t> ids(request.ids().begin(), request.ids().end());
  int64_t removed = 0;
  std::vector<std::string> failures, erased_on;
  for (const auto& server : servers) {
    auto count = server->Erase(request.collection(), ids, request.reason());
    if (count.ok()) {
      removed += *count;
      erased_on.push_back(server->Describe());
    } else {
      failures.push_back(std::string(count.status().message()));
    }
  }
  if (some_shard_unreachable) failures.push_back("a shard has no reachable server");
  // Recorded whatever happened, naming the servers that did and did not erase, so the ledger
  // shows an incomplete erasure that the operator must repeat.
  auto index =
      Record(operator_name, "erase", request.reason(), ids, request.collection(),
             nlohmann::json{{"removed", removed}, {"erased_on", erased_on}, {"failures", failures}}
                 .dump());
  if (!index.ok()) return ToGrpcStatus(index.status());
  if (!failures.empty()) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        absl::StrCat("erasure incomplete (ledger entry ", *index,
                                     "); repeat it: ", absl::StrJoin(failures, "; ")));
  }
  response->set_removed(removed);
  response->set_ledger_index(*index);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::LoadGeneration(grpc::ServerContext* context,
                                              const v1::LoadGenerationRequest* request,
                                              v1::LoadGenerationResponse* response) {
  auto who = operators_.Admit(*context);
  if (!who.ok()) return ToGrpcStatus(who.status());
  std::lock_guard lock(mutation_mutex_);
  auto current = LocalCollection(request->collection());
  if (!current.ok()) return ToGrpcStatus(current.status());
  std::filesystem::path dir = request->generation_dir();
  if (dir.is_relative()) dir = deps_.data_dir / dir;
  // On GPUs the new generation is placed next to the one still serving (checked against the
  // free memory left), and the old one is freed when its last search ends.
  auto loaded = Catalog::LoadCollection(request->collection(), dir, {},
                                        deps_.state.ErasureJournal(request->collection()),
                                        deps_.catalog->gpu());
  if (!loaded.ok()) return ToGrpcStatus(loaded.status());
  const std::string previous = (*current)->generation;
  const std::string generation = (*loaded)->generation;
  if (auto status = Publish(*loaded); !status.ok()) return ToGrpcStatus(status);
  auto index =
      Record(*who, "swap_generation", request->reason(), {}, request->collection(),
             nlohmann::json{{"from", previous}, {"to", generation}, {"dir", dir.string()}}.dump());
  if (!index.ok()) return ToGrpcStatus(index.status());
  response->set_index_generation(generation);
  response->set_previous_generation(previous);
  response->set_ledger_index(*index);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::ReloadKeys(grpc::ServerContext* context,
                                          const v1::ReloadKeysRequest* request,
                                          v1::ReloadKeysResponse* response) {
  auto who = operators_.Admit(*context);
  if (!who.ok()) return ToGrpcStatus(who.status());
  if (auto status = deps_.verifier->Reload(); !status.ok()) return ToGrpcStatus(status);
  auto index = Record(*who, "reload_keys", request->reason(), {}, "", "{}");
  if (!index.ok()) return ToGrpcStatus(index.status());
  response->set_ledger_index(*index);
  return grpc::Status::OK;
}

}  // namespace probity::service
