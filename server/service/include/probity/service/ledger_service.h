#pragma once

// The auditor's Ledger API: checkpoints, stored entries and RFC 6962 proofs. Callers reach the
// handlers only through the CallGate, which admits auditors alone.

#include "probity/ledger/ledger.h"
#include "probity/v1/ledger_service.grpc.pb.h"

namespace probity::service {

class LedgerServiceImpl final : public v1::Ledger::Service {
 public:
  explicit LedgerServiceImpl(const ledger::Ledger& ledger) : ledger_(ledger) {}

  grpc::Status GetCheckpoint(grpc::ServerContext* context, const v1::GetCheckpointRequest* request,
                             v1::GetCheckpointResponse* response) override;
  grpc::Status GetEntries(grpc::ServerContext* context, const v1::GetEntriesRequest* request,
                          v1::GetEntriesResponse* response) override;
  grpc::Status GetInclusionProof(grpc::ServerContext* context,
                                 const v1::GetInclusionProofRequest* request,
                                 v1::GetInclusionProofResponse* response) override;
  grpc::Status GetConsistencyProof(grpc::ServerContext* context,
                                   const v1::GetConsistencyProofRequest* request,
                                   v1::GetConsistencyProofResponse* response) override;

 private:
  const ledger::Ledger& ledger_;
};

}  // namespace probity::service
