#include "probity/service/grpc_server_options.h"

#include <grpcpp/resource_quota.h>

#include <algorithm>

namespace probity::service {

void ApplyServerOptions(int max_in_flight, int max_receive_bytes, grpc::ServerBuilder& builder) {
  grpc::ResourceQuota quota("probity");
  quota.SetMaxThreads(max_in_flight * 2 + 16);
  builder.SetResourceQuota(quota);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS,
                              std::max(2, max_in_flight));
  builder.SetMaxReceiveMessageSize(max_receive_bytes);
}

}  // namespace probity::service
