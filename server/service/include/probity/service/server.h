#pragma once

// Assembles the processes: `probity serve` (router + Search/Admin/Ledger, with local shards in
// embedded mode or remote shard servers) and `probity shard` (Shard service only). Both expose
// grpc.health.v1.Health and server reflection.

#include <grpcpp/channel.h>
#include <grpcpp/support/channel_arguments.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "probity/ledger/ledger.h"
#include "probity/service/config.h"
#include "probity/service/search_service.h"
#include "probity/service/service_counters.h"

namespace probity::service {

class Server {
 public:
  // For tests: a ledger to use instead of opening the configured one (e.g. one whose appends
  // fail).
  struct Overrides {
    std::unique_ptr<ledger::Ledger> ledger;
  };

  static absl::StatusOr<std::unique_ptr<Server>> StartRouter(ServerConfig config,
                                                             Overrides overrides = {});
  static absl::StatusOr<std::unique_ptr<Server>> StartShard(ServerConfig config);

  virtual ~Server() = default;
  virtual int port() const = 0;
  // A channel to this server that never leaves the process: the same services, checks, ledger
  // and handlers as a call on `port()`, without the network transport, and so without a client
  // certificate (roles granted to a certificate cannot be used on it; bearer credentials can).
  // For benchmarks that separate what the transport costs from what the service does, and for
  // programs that embed the server.
  virtual std::shared_ptr<grpc::Channel> InProcessChannel(const grpc::ChannelArguments& args) = 0;
  // The HTTPS report listener's port (`report_http`); 0 when it is off.
  virtual int report_http_port() const { return 0; }
  // Stops taking calls (health goes NOT_SERVING), lets calls in flight finish until `drain`
  // is over, then cancels what is left.
  virtual void Shutdown(absl::Duration drain) = 0;
  virtual void Wait() = 0;
  virtual const ServiceCounters& counters() const = 0;
  // The port of the metrics endpoint (config "metrics"), 0 when there is none.
  virtual int metrics_port() const = 0;
};

// Blocks until SIGTERM or SIGINT, then drains the server. Call before starting other threads
// is not needed: the signals are waited for synchronously on a dedicated thread.
void ServeUntilTerminated(Server& server, absl::Duration drain);

// Blocks SIGTERM and SIGINT in the calling thread (and threads it starts later) so that
// ServeUntilTerminated can wait for them; call first thing in main paths that serve.
void BlockTerminationSignals();

}  // namespace probity::service
