// probity: one binary for operators (gen, build, serve, shard), investigators (query),
// researchers (search, eval) and auditors (ledger). Subcommands come from *_commands.cpp.
#include <CLI/CLI.hpp>

#include "command_registry.h"
#include "probity/common/abseil_deadlock_detection.h"
#include "probity/common/terminate_report.h"

int main(int argc, char** argv) {
  // A CUDA error in a destructor ends the process through std::terminate: say why.
  probity::common::InstallTerminateReport();
  // Debian's Abseil checks every Mutex (gRPC's included) for lock cycles under one global lock.
  probity::common::TurnOffAbseilDeadlockDetection();
  CLI::App app{"Probity: warranted, audited face-embedding search on FAISS IVF-PQ"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "probity 0.1.0");
  probity::cli::AddRegisteredCommands(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
