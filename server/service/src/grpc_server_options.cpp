#include "probity/service/grpc_server_options.h"

#include <grpcpp/resource_quota.h>

#include <algorithm>
#include <thread>

namespace probity::service {

int OneCompletionQueuePerCore() {
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

void ApplyServerOptions(int max_in_flight, int max_receive_bytes, grpc::ServerBuilder& builder,
                        int completion_queues) {
  grpc::ResourceQuota quota("probity");
  quota.SetMaxThreads(max_in_flight * 2 + 16);
  builder.SetResourceQuota(quota);
  // gRPC reserves a thread of the quota for each queue's poller at start, and a queue whose
  // poller found no quota is never polled; max_in_flight queues always fit the quota.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::NUM_CQS,
                              std::clamp(completion_queues, 1, std::max(1, max_in_flight)));
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 1);
  // Per completion queue; calls need not spread evenly, so each may keep up to the whole limit
  // (the thread quota bounds them all together).
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS,
                              std::max(2, max_in_flight));
  builder.SetMaxReceiveMessageSize(max_receive_bytes);
}

}  // namespace probity::service
