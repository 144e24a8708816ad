#include "call_context.h"

#include "absl/time/clock.h"

namespace probity::client {

void PrepareContext(grpc::ClientContext& context, const std::string& warrant,
                    absl::Duration timeout) {
  // No warrant, no header: the server refuses such a call (UNAUTHENTICATED) and records it.
  if (!warrant.empty()) context.AddMetadata("authorization", "Bearer " + warrant);
  if (timeout != absl::InfiniteDuration()) {
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  }
}

}  // namespace probity::client
