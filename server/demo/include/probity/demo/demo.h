#pragma once

// `probity serve --demo`: a self-contained data directory with a synthetic gallery, a test
// issuer key and JWKS, a ledger signing key, operator and auditor tokens, a config file and a
// fresh demo warrant. Only for trying Probity out: the keys sit next to the data. A library of
// its own (probity_demo, linked by the CLI), so that the service library holds no demo code.

#include <filesystem>
#include <string>

#include "absl/status/statusor.h"
#include "probity/service/config.h"

namespace probity::demo {

struct DemoFiles {
  std::filesystem::path config_file;
  std::filesystem::path warrant_file;
  std::filesystem::path query_file;  // held-out probe images of gallery identities (.fvecs)
  std::filesystem::path operator_token_file;
  std::filesystem::path auditor_token_file;
  std::string collection;
};

inline constexpr char kDemoDeployment[] = "probity-demo";
inline constexpr char kDemoCollection[] = "demo";

// Creates what is missing in `data_dir` (the gallery, keys and config only on first start) and
// issues a new demo warrant every time, so the demo never stops on an expired warrant.
// `identities` x 5 images make the gallery (first start only).
absl::StatusOr<DemoFiles> PrepareDemo(const std::filesystem::path& data_dir,
                                      const std::string& listen, int64_t identities = 1000);

}  // namespace probity::demo
