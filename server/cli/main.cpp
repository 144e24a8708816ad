// probity: one binary for operators (gen, build, serve, shard), investigators (query),
// researchers (search, eval) and auditors (ledger). Subcommands come from *_commands.cpp.
#include <CLI/CLI.hpp>

#include "absl/synchronization/mutex.h"
#include "command_registry.h"
#include "probity/common/terminate_report.h"

int main(int argc, char** argv) {
  // A CUDA error in a destructor ends the process through std::terminate: say why.
  probity::common::InstallTerminateReport();
  // Debian's Abseil is built with Mutex deadlock detection on: every lock that gRPC and Probity
  // take updates a global lock graph, about 2% of a search's CPU (bench/RESULTS.md). It is a
  // debugging aid; tests keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app{"Probity: warranted, audited face-embedding search on FAISS IVF-PQ"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "probity 0.1.0");
  probity::cli::AddRegisteredCommands(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
