// probity: one binary for operators (gen, build, serve, shard), investigators (query),
// researchers (search, eval) and auditors (ledger). Subcommands come from *_commands.cpp.
#include <CLI/CLI.hpp>

#include "command_registry.h"

int main(int argc, char** argv) {
  CLI::App app{"Probity: warranted, audited face-embedding search on FAISS IVF-PQ"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "probity 0.1.0");
  probity::cli::AddRegisteredCommands(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
