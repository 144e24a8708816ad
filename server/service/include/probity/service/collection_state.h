#pragma once

// Where each collection's serving generation is remembered across restarts, and where its
// erasures are journalled: files in the server's state directory, one pair per collection.

#include <filesystem>
#include <string>

namespace probity::service {

struct CollectionState {
  std::filesystem::path state_dir;
  std::filesystem::path ErasureJournal(const std::string& collection) const {
    return state_dir / (collection + ".erased");
  }
  std::filesystem::path GenerationFile(const std::string& collection) const {
    return state_dir / (collection + ".generation");
  }
};

}  // namespace probity::service
