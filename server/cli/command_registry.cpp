#include "command_registry.h"

#include <iostream>
#include <map>

namespace probity::cli {
namespace {

std::map<std::string, CommandGroup>& Registry() {
  static std::map<std::string, CommandGroup> registry;
  return registry;
}

}  // namespace

CommandRegistrar::CommandRegistrar(std::string name, CommandGroup group) {
  Registry().emplace(std::move(name), std::move(group));
}

void AddRegisteredCommands(CLI::App& root) {
  for (auto& [name, group] : Registry()) group(root);
}

void ExitOnError(const absl::Status& status) {
  if (status.ok()) return;
  std::cerr << "probity: " << status.message() << "\n";
  throw CLI::RuntimeError(1);
}

}  // namespace probity::cli
