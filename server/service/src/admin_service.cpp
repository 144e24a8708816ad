#include "probity/service/admin_service.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "probity/common/owner_only_file.h"
#include "probity/index/generation.h"
#include "probity/index/private_files.h"
#include "probity/service/call_gate.h"
#include "probity/service/grpc_status.h"
#include "probity/service/local_route.h"
#include "probity/service/router_stats.h"

namespace probity::service {
namespace {

constexpr int64_t kMaxVectorsPerStream = 1 << 22;

// The served generation survives a restart only once this write is durable, and a crash must
// never leave half a path: an owner-only atomic write (common/owner_only_file.h).
absl::Status WriteStateFile(const std::filesystem::path& file, const std::string& text) {
  if (auto status = index::CreatePrivateDirectories(file.parent_path()); !status.ok()) {
    return absl::UnavailableError(status.message());
  }
  return common::WriteOwnerOnlyFile(file, text);
}

v1::LedgerEntry AdminEntry(const std::string& operator_name, const std::string& action,
                           const std::string& reason, const std::string& collection,
                           const std::vector<int64_t>& ids, v1::Outcome outcome,
                           const std::string& detail) {
  v1::LedgerEntry entry;
  entry.set_time_unix_micros(NowMicros());
  entry.set_kind(v1::ENTRY_KIND_ADMIN);
  entry.set_outcome(outcome);
  if (!collection.empty()) entry.add_collections(collection);
  v1::AdminAction* admin = entry.mutable_admin();
  admin->set_action(action);
  admin->set_operator_(operator_name);
  admin->set_reason(reason);
  admin->mutable_ids()->Add(ids.begin(), ids.end());
  admin->set_detail(detail);
  return entry;
}

}  // namespace

absl::Status AdminServiceImpl::RecordRequest(Action& action, const std::string& detail) {
  auto receipt =
      deps_.audit->Append(AdminEntry(action.operator_name, action.name, action.reason,
                                     action.collection, action.ids, v1::OUTCOME_REQUESTED, detail));
  if (!receipt.ok()) {
    return absl::UnavailableError(
        absl::StrCat("the ledger could not record the ", action.name,
                     " request, so nothing was changed: ", receipt.status().message()));
  }
  action.request_index = receipt->index;
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> AdminServiceImpl::RecordOutcome(const Action& action,
                                                         const absl::Status& result,
                                                         const std::string& detail) {
  nlohmann::json outcome = nlohmann::json::parse(detail.empty() ? "{}" : detail);
  outcome["request_entry"] = action.request_index;
  if (!result.ok()) outcome["error"] = std::string(result.message());
  // Each entry stands alone: the outcome repeats the request's ids (what was erased).
  auto receipt = deps_.audit->Append(
      AdminEntry(action.operator_name, action.name, action.reason, action.collection, action.ids,
                 result.ok() ? v1::OUTCOME_APPLIED : v1::OUTCOME_FAILED, outcome.dump()));
  if (!receipt.ok()) {
    spdlog::error("admin action {} {}; ledger entry {} records the request but not its outcome: {}",
                  action.name, result.ok() ? "applied" : "failed", action.request_index,
                  std::string(receipt.status().message()));
    return absl::UnavailableError(absl::StrCat(
        "the ", action.name, result.ok() ? " was applied" : " failed", "; ledger entry ",
        action.request_index, " records the request but its outcome could not be recorded: ",
        receipt.status().message()));
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
  auto status = WriteStateFile(deps_.state.GenerationFile(collection->name),
                               collection->generation_dir.string() + "\n");
  if (!status.ok()) return status;
  deps_.catalog->Put(collection);
  deps_.router->SetRoute(LocalRoute(*collection, deps_.local_shards));
  return absl::OkStatus();
}

absl::Status AdminServiceImpl::ServeFromDisk(const LoadedCollection& collection) {
  auto reloaded = Catalog::LoadCollection(collection.name, collection.generation_dir, {},
                                          deps_.state.ErasureJournal(collection.name));
  if (!reloaded.ok()) return reloaded.status();
  deps_.catalog->Put(*reloaded);
  deps_.router->SetRoute(LocalRoute(**reloaded, deps_.local_shards));
  return absl::OkStatus();
}

grpc::Status AdminServiceImpl::ListCollections(grpc::ServerContext* /*context*/,
                                               const v1::ListCollectionsRequest* /*request*/,
                                               v1::ListCollectionsResponse* response) {
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

grpc::Status AdminServiceImpl::Stats(grpc::ServerContext* /*context*/,
                                     const v1::StatsRequest* /*request*/,
                                     v1::StatsResponse* response) {
  const ServiceCounters& counters = *deps_.counters;
  response->set_searches_answered(counters.searches_answered.load());
  response->set_searches_failed(counters.searches_failed.load());
  response->set_refusals(counters.refusals.load());
  response->set_shard_searches_run(counters.shards.searches_run.load());
  response->set_shard_searches_coalesced(counters.shards.searches_coalesced.load());
  response->set_shard_search_micros(counters.shards.search_micros.load());
  response->set_search_shard_phase_micros(counters.shard_phase_micros.load());
  response->set_search_ledger_append_micros(counters.ledger_append_micros.load());
  response->set_ledger_size(deps_.audit->ledger().Size());
  response->set_in_flight(std::max<int64_t>(0, counters.in_flight.load()));
  response->set_refusals_not_recorded(deps_.audit->refusals_not_recorded());
  response->set_searches_refused_busy(counters.searches_refused_busy.load());
  FillRouterStats(*deps_.router, *response);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::AddVectors(grpc::ServerContext* /*context*/,
                                          grpc::ServerReader<v1::AddVectorsRequest>* reader,
                                          v1::AddVectorsResponse* response) {
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
  const int64_t next = std::stoll((*collection)->generation) + 1;
  Action action(AdmittedCaller(), "add", reason, collection_name);
  const std::string detail = nlohmann::json{{"added", ids.size()}, {"generation", next}}.dump();
  if (auto status = RecordRequest(action, detail); !status.ok()) return ToGrpcStatus(status);
  // The added vectors become a new generation on disk so that a restart keeps them.
  bool served_index_changed = false;
  auto apply = [&]() -> absl::Status {
    if (auto status = (*collection)->index->Add(vectors, ids); !status.ok()) return status;
    served_index_changed = true;
    const std::filesystem::path dir =
        deps_.state.state_dir / collection_name / absl::StrCat("gen-", next);
    if (auto status = index::WriteGeneration(*(*collection)->index, next, dir); !status.ok()) {
      return status;
    }
    auto updated = std::make_shared<LoadedCollection>(**collection);
    updated->generation = std::to_string(next);
    updated->generation_dir = dir;
    return Publish(updated);
  };
  absl::Status applied = apply();
  if (!applied.ok() && served_index_changed) {
    // Add changed the served index in place, but the addition failed: serve the unchanged
    // generation from disk again, so that what is served is what the outcome entry says.
    if (auto restored = ServeFromDisk(**collection); !restored.ok()) {
      applied = absl::Status(applied.code(), absl::StrCat(applied.message(),
                                                          "; the added vectors are served "
                                                          "until a restart: ",
                                                          restored.message()));
    }
  }
  auto index = RecordOutcome(action, applied, detail);
  if (!applied.ok()) return ToGrpcStatus(applied);
  if (!index.ok()) return ToGrpcStatus(index.status());
  response->set_added(static_cast<int64_t>(ids.size()));
  response->set_ledger_index(*index);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::Erase(grpc::ServerContext* /*context*/,
                                     const v1::EraseRequest* request, v1::EraseResponse* response) {
  if (request->reason().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "an erasure needs a reason");
  }
  std::lock_guard lock(mutation_mutex_);
  Action action(AdmittedCaller(), "erase", request->reason(), request->collection(),
                {request->ids().begin(), request->ids().end()});
  if (deps_.catalog == nullptr) return EraseOnShardServers(action, *request, response);
  auto collection = LocalCollection(request->collection());
  if (!collection.ok()) return ToGrpcStatus(collection.status());
  if (auto status = RecordRequest(action, "{}"); !status.ok()) return ToGrpcStatus(status);
  // Journal first: once the erasure is acknowledged it must survive a crash and a restart.
  const absl::Status journalled =
      AppendErasures(deps_.state.ErasureJournal(request->collection()), action.ids);
  const absl::StatusOr<int64_t> removed =
      journalled.ok() ? (*collection)->index->Remove(action.ids) : journalled;
  auto index = RecordOutcome(action, removed.status(),
                             removed.ok() ? nlohmann::json{{"removed", *removed}}.dump() : "{}");
  if (!removed.ok()) return ToGrpcStatus(removed.status());
  if (!index.ok()) return ToGrpcStatus(index.status());
  response->set_removed(*removed);
  response->set_ledger_index(*index);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::EraseOnShardServers(Action& action, const v1::EraseRequest& request,
                                                   v1::EraseResponse* response) {
  auto route = deps_.router->Route(request.collection());
  if (!route) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no collection named " + request.collection());
  }
  // Nothing is forwarded unless the request is in the ledger.
  if (auto status = RecordRequest(action, "{}"); !status.ok()) return ToGrpcStatus(status);
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
  int64_t removed = 0;
  std::vector<std::string> failures, erased_on;
  for (const auto& server : servers) {
    auto count = server->Erase(request.collection(), action.ids, request.reason());
    if (count.ok()) {
      removed += *count;
      erased_on.push_back(server->Describe());
    } else {
      failures.push_back(std::string(count.status().message()));
    }
  }
  if (some_shard_unreachable) failures.push_back("a shard has no reachable server");
  // The outcome names the servers that did and did not erase, so the ledger shows an
  // incomplete erasure that the operator must repeat.
  const absl::Status result =
      failures.empty() ? absl::OkStatus()
                       : absl::UnavailableError(absl::StrCat("erasure incomplete; repeat it: ",
                                                             absl::StrJoin(failures, "; ")));
  auto index = RecordOutcome(
      action, result,
      nlohmann::json{{"removed", removed}, {"erased_on", erased_on}, {"failures", failures}}
          .dump());
  if (!index.ok()) return ToGrpcStatus(index.status());
  if (!result.ok()) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        absl::StrCat("erasure incomplete (ledger entry ", *index,
                                     "); repeat it: ", absl::StrJoin(failures, "; ")));
  }
  response->set_removed(removed);
  response->set_ledger_index(*index);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::LoadGeneration(grpc::ServerContext* /*context*/,
                                              const v1::LoadGenerationRequest* request,
                                              v1::LoadGenerationResponse* response) {
  std::lock_guard lock(mutation_mutex_);
  auto current = LocalCollection(request->collection());
  if (!current.ok()) return ToGrpcStatus(current.status());
  std::filesystem::path dir = request->generation_dir();
  if (dir.is_relative()) dir = deps_.data_dir / dir;
  if (auto status = index::CheckOwnerOnly(dir); !status.ok()) return ToGrpcStatus(status);
  // On GPUs the new generation is placed next to the one still serving (checked against the
  // free memory left), and the old one is freed when its last search ends.
  auto loaded = Catalog::LoadCollection(request->collection(), dir, {},
                                        deps_.state.ErasureJournal(request->collection()),
                                        deps_.catalog->gpu());
  if (!loaded.ok()) return ToGrpcStatus(loaded.status());
  const std::string previous = (*current)->generation;
  const std::string generation = (*loaded)->generation;
  const std::string detail =
      nlohmann::json{{"from", previous}, {"to", generation}, {"dir", dir.string()}}.dump();
  Action action(AdmittedCaller(), "swap_generation", request->reason(), request->collection());
  if (auto status = RecordRequest(action, detail); !status.ok()) return ToGrpcStatus(status);
  const absl::Status published = Publish(*loaded);
  auto index = RecordOutcome(action, published, detail);
  if (!published.ok()) return ToGrpcStatus(published);
  if (!index.ok()) return ToGrpcStatus(index.status());
  response->set_index_generation(generation);
  response->set_previous_generation(previous);
  response->set_ledger_index(*index);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::ReloadKeys(grpc::ServerContext* /*context*/,
                                          const v1::ReloadKeysRequest* request,
                                          v1::ReloadKeysResponse* response) {
  Action action(AdmittedCaller(), "reload_keys", request->reason());
  if (auto status = RecordRequest(action, "{}"); !status.ok()) return ToGrpcStatus(status);
  const absl::Status reloaded = deps_.verifier->Reload();
  auto index = RecordOutcome(action, reloaded, "{}");
  if (!reloaded.ok()) return ToGrpcStatus(reloaded);
  if (!index.ok()) return ToGrpcStatus(index.status());
  response->set_ledger_index(*index);
  return grpc::Status::OK;
}

}  // namespace probity::service
