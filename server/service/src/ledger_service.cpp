#include "probity/service/ledger_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "probity/service/grpc_status.h"

namespace probity::service {
namespace {

constexpr uint64_t kMaxEntriesPerCall = 1000;

std::string HashBytes(const ledger::Hash& hash) {
  return std::string(reinterpret_cast<const char*>(hash.data()), hash.size());
}

}  // namespace

grpc::Status LedgerServiceImpl::GetCheckpoint(grpc::ServerContext* /*context*/,
                                              const v1::GetCheckpointRequest* /*request*/,
                                              v1::GetCheckpointResponse* response) {
  const uint64_t size = ledger_.Size();
  auto checkpoint = ledger_.SignedCheckpoint();
  if (!checkpoint.ok()) return ToGrpcStatus(checkpoint.status());
  response->set_signed_checkpoint(*checkpoint);
  response->set_tree_size(size);
  response->set_verifier_key(ledger_.VerifierKey());
  return grpc::Status::OK;
}

grpc::Status LedgerServiceImpl::GetEntries(grpc::ServerContext* /*context*/,
                                           const v1::GetEntriesRequest* request,
                                           v1::GetEntriesResponse* response) {
  const uint64_t size = ledger_.Size();
  if (request->start() >= size && request->count() > 0) {
    return grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                        absl::StrCat("start ", request->start(), " is past the log size ", size));
  }
  const uint64_t end =
      std::min(size, request->start() + std::min(request->count(), kMaxEntriesPerCall));
  for (uint64_t index = request->start(); index < end; ++index) {
    auto bytes = ledger_.ReadEntry(index);
    if (!bytes.ok()) return ToGrpcStatus(bytes.status());
    v1::StoredEntry* stored = response->add_entries();
    stored->set_index(index);
    stored->set_entry(*bytes);
  }
  return grpc::Status::OK;
}

grpc::Status LedgerServiceImpl::GetInclusionProof(grpc::ServerContext* /*context*/,
                                                  const v1::GetInclusionProofRequest* request,
                                                  v1::GetInclusionProofResponse* response) {
  const uint64_t size = request->tree_size() ? request->tree_size() : ledger_.Size();
  auto proof = ledger_.InclusionProof(request->index(), size);
  if (!proof.ok()) return ToGrpcStatus(proof.status());
  auto root = ledger_.RootAt(size);
  if (!root.ok()) return ToGrpcStatus(root.status());
  response->set_index(request->index());
  response->set_tree_size(size);
  for (const ledger::Hash& hash : *proof) response->add_hashes(HashBytes(hash));
  response->set_root_hash(HashBytes(*root));
  return grpc::Status::OK;
}

grpc::Status LedgerServiceImpl::GetConsistencyProof(grpc::ServerContext* /*context*/,
                                                    const v1::GetConsistencyProofRequest* request,
                                                    v1::GetConsistencyProofResponse* response) {
  const uint64_t new_size = request->new_size() ? request->new_size() : ledger_.Size();
  auto proof = ledger_.ConsistencyProof(request->old_size(), new_size);
  if (!proof.ok()) return ToGrpcStatus(proof.status());
  auto old_root = ledger_.RootAt(request->old_size());
  if (!old_root.ok()) return ToGrpcStatus(old_root.status());
  auto new_root = ledger_.RootAt(new_size);
  if (!new_root.ok()) return ToGrpcStatus(new_root.status());
  response->set_old_size(request->old_size());
  response->set_new_size(new_size);
  for (const ledger::Hash& hash : *proof) response->add_hashes(HashBytes(hash));
  response->set_old_root_hash(HashBytes(*old_root));
  response->set_new_root_hash(HashBytes(*new_root));
  return grpc::Status::OK;
}

}  // namespace probity::service
