#pragma once

// The router's route for a collection this process serves itself: every shard on the local
// shard backend. Made at start-up and again whenever an admin action changes the collection.

#include <memory>

#include "probity/service/catalog.h"
#include "probity/service/router.h"
#include "probity/service/shard_backend.h"

namespace probity::service {

CollectionRoute LocalRoute(const LoadedCollection& collection,
                           std::shared_ptr<ShardBackend> local_shards);

}  // namespace probity::service
