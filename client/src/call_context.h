#pragma once

// What every Probity RPC carries: the warrant as `authorization: Bearer <token>` and, unless
// the caller waits forever, a deadline. An empty warrant sends no header at all.

#include <grpcpp/client_context.h>

#include <string>

#include "absl/time/time.h"

namespace probity::client {

void PrepareContext(grpc::ClientContext& context, const std::string& warrant,
                    absl::Duration timeout);

}  // namespace probity::client
