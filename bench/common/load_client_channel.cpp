#include "common/load_client_channel.h"

namespace probity::bench {

std::shared_ptr<grpc::Channel> LoadClientChannel(const std::string& target, int client) {
  grpc::ChannelArguments args;
  args.SetInt("probity_load_client", client);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // GRPC_ARG_MIN_RECONNECT_BACKOFF_MS stays at its default: despite its name it is the connect
  // timeout, and 100 ms timed out the handshakes of 64 clients connecting at once on a busy
  // machine.
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

void PrepareLoadCall(grpc::ClientContext& context, std::chrono::system_clock::time_point deadline) {
  context.set_wait_for_ready(true);
  context.set_deadline(deadline);
}

}  // namespace probity::bench
