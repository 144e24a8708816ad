// libFuzzer target for the config parser: whatever the bytes, ParseConfig answers with a config
// or an error (never an exception or a crash), and a config it accepts survives ValidateConfig
// and a round trip through ConfigToJson unchanged.
#include <stdio.h>
#include <stdlib.h>

#include <cstdint>
#include <string>

#include "probity/service/config.h"

namespace {

[[noreturn]] void Fail(const char* why, const std::string& detail) {
  fprintf(stderr, "fuzz_config: %s\n%s\n", why, detail.c_str());
  abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace probity::service;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto config = ParseConfig(text, "/data");
  if (!config.ok()) {
    if (config.status().message().empty()) Fail("an error without a message", text);
    return 0;
  }
  if (config->demo) Fail("a file turned on demo mode", text);
  (void)ValidateConfig(*config);
  const std::string written = ConfigToJson(*config);
  const auto reread = ParseConfig(written, "/elsewhere");
  if (!reread.ok()) Fail("ConfigToJson wrote a config ParseConfig refuses", written);
  if (ConfigToJson(*reread) != written) Fail("the config changed in a round trip", written);
  return 0;
}
