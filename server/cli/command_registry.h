#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "absl/status/status.h"

namespace probity::cli {

// A group of subcommands ("gen", "warrant", "ledger", ...) added to the root app.
using CommandGroup = std::function<void(CLI::App& root)>;

// Registers a group at static-initialization time; use through PROBITY_REGISTER_COMMANDS.
struct CommandRegistrar {
  CommandRegistrar(std::string name, CommandGroup group);
};

// Adds every registered group to `root`, in name order so that --help is stable.
void AddRegisteredCommands(CLI::App& root);

// The one place where library errors become a process exit: prints the status and makes
// CLI11 exit with code 1 (CLI11's exceptions are its own exit protocol).
void ExitOnError(const absl::Status& status);

}  // namespace probity::cli

#define PROBITY_CLI_CONCAT_INNER(a, b) a##b
#define PROBITY_CLI_CONCAT(a, b) PROBITY_CLI_CONCAT_INNER(a, b)
#define PROBITY_REGISTER_COMMANDS(name, fn) \
  static ::probity::cli::CommandRegistrar PROBITY_CLI_CONCAT(probity_registrar_, __LINE__)(name, fn)
