#pragma once

// The router's per-shard-server and hedging counters, as Admin.Stats reports them.

#include "probity/service/router.h"
#include "probity/v1/admin.pb.h"

namespace probity::service {

void FillRouterStats(const Router& router, v1::StatsResponse& response);

}  // namespace probity::service
