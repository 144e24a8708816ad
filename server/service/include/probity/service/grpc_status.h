#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace probity::service {

// absl and gRPC share the canonical code numbering, so the conversion keeps codes as they are.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace probity::service
