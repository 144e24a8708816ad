#include "probity/service/router_stats.h"

namespace probity::service {

void FillRouterStats(const Router& router, v1::StatsResponse& response) {
  for (const ReplicaSnapshot& replica : router.ReplicaStats()) {
    v1::ShardServerStats* out = response.add_shard_servers();
    out->set_server(replica.server);
    out->set_attempts(replica.attempts);
    out->set_answered(replica.answered);
    out->set_failures(replica.failures);
    out->set_hedges_sent(replica.hedges_sent);
    out->set_hedges_won(replica.hedges_won);
    out->set_overtaken(replica.overtaken);
    out->set_in_flight(replica.in_flight);
    out->set_latency_ms(replica.latency_ms);
    out->set_consecutive_failures(replica.consecutive_failures);
    out->set_last_failure(replica.last_failure);
  }
  const RouterTotals totals = router.Totals();
  response.set_shard_hedges(totals.hedges);
  response.set_shard_retries(totals.retries);
}

}  // namespace probity::service
