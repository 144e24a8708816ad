#include "probity/service/local_route.h"

namespace probity::service {

CollectionRoute LocalRoute(const LoadedCollection& collection,
                           std::shared_ptr<ShardBackend> local_shards) {
  CollectionRoute route;
  route.name = collection.name;
  route.metric = collection.index->spec().metric;
  route.dim = collection.index->spec().dim;
  route.replicas.assign(collection.index->num_shards(), {std::move(local_shards)});
  return route;
}

}  // namespace probity::service
