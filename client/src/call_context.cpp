#include "call_context.h"

#include "absl/time/clock.h"

namespace probity::client {

void PrepareContext(grpc::ClientContext& context, const std::string& warrant,
                    absl::Duration timeout) {
  context.AddMetadata("authorization", "Bearer " + warrant);
  if (timeout != absl::InfiniteDuration()) {
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  }
}

}  // namespace probity::client
