// Strict parsing of the server config: unknown keys at every level and wrong types are errors
// that name the key's path, the "demo" key is refused (only the --demo flag relaxes the
// transport rules), and every config this repository ships or writes still parses.
#include "probity/service/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/scoped_temp_dir.h"
#include "probity/common/file_read.h"
#include "probity/demo/demo.h"

namespace probity::service::testing {
namespace {

// Parses `json` and expects an InvalidArgument error whose message contains `expected`.
void ExpectRefused(const std::string& json, const std::string& expected) {
  const auto parsed = ParseConfig(json, "/data");
  ASSERT_FALSE(parsed.ok()) << "accepted: " << json;
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << parsed.status();
  EXPECT_TRUE(absl::StrContains(parsed.status().message(), expected))
      << "message: " << parsed.status().message() << "\nexpected to contain: " << expected;
}

TEST(ConfigStrictnessTest, MisspeltRequireClientCertIsRefusedWithItsPath) {
  ExpectRefused(R"({"tls": {"cert_file": "s.pem", "key_file": "s.key",
                            "client_ca_file": "ca.pem", "require_client_crt": true}})",
                R"(config: unknown key "tls.require_client_crt")");
}

TEST(ConfigStrictnessTest, UnknownKeysAreRefusedAtEveryLevel) {
  ExpectRefused(R"({"listen": "127.0.0.1:1", "max_inflight": 3})",
                R"(config: unknown key "max_inflight")");
  ExpectRefused(R"({"ledger": {"dir": "l", "fsynk": false}})",
                R"(config: unknown key "ledger.fsynk")");
  ExpectRefused(R"({"shard_client_tls": {"ca_file": "ca.pem"}})",
                R"(config: unknown key "shard_client_tls.ca_file")");
  ExpectRefused(R"({"collections": [{"name": "a", "generation_dir": "g"},
                                    {"name": "b", "generation_dir": "g", "shard": [1]}]})",
                R"(config: unknown key "collections[1].shard")");
  ExpectRefused(R"({"operators": [{"name": "o", "token": "ab"}]})",
                R"(config: unknown key "operators[0].token")");
  ExpectRefused(R"({"auditors": [{"name": "a", "tls_identity": "x", "role": "admin"}]})",
                R"(config: unknown key "auditors[0].role")");
  ExpectRefused(R"({"routers": [{"name": "r", "tls_identiy": "router"}]})",
                R"(config: unknown key "routers[0].tls_identiy")");
  // Quotes and control characters in a key are escaped, so the path reads unambiguously.
  ExpectRefused(R"({"ledger": {"a\"b\n": 1}})", R"(config: unknown key "ledger.a\"b\n")");
}

TEST(ConfigStrictnessTest, WrongTypesAreRefusedWithTheKeyAndTheValue) {
  ExpectRefused(R"({"tls": {"cert_file": "s.pem", "key_file": "s.key",
                            "require_client_cert": "yes"}})",
                R"(config: "tls.require_client_cert" must be true or false, not "yes")");
  ExpectRefused(R"({"max_in_flight": "64"})",
                R"(config: "max_in_flight" must be an integer, not "64")");
  ExpectRefused(R"({"max_in_flight": 6.5})", R"(config: "max_in_flight" must be an integer)");
  ExpectRefused(R"({"listen": 7443})", R"(config: "listen" must be a string, not 7443)");
  ExpectRefused(R"({"refusal_rate_per_second": true})",
                R"(config: "refusal_rate_per_second" must be a number)");
  ExpectRefused(R"({"ledger": []})", R"(config: "ledger" must be an object, not an array)");
  ExpectRefused(R"({"collections": {"name": "a"}})",
                R"(config: "collections" must be an array, not an object)");
  ExpectRefused(R"({"collections": [{"name": "a", "generation_dir": "g", "shards": [0, "1"]}]})",
                R"(config: "collections[0].shards[1]" must be an integer)");
  ExpectRefused(R"({"shard_servers": "a:1"})", R"(config: "shard_servers" must be an array)");
  ExpectRefused(R"({"operators": ["alice"]})",
                R"(config: "operators[0]" must be an object, not "alice")");
  ExpectRefused(R"([1, 2])", R"(config: the top level must be an object, not an array)");
  ExpectRefused(R"({"max_in_flight": null})", R"(config: "max_in_flight" must be an integer)");
}

TEST(ConfigStrictnessTest, IntegersOutsideTheirFieldAreRefusedNotTruncated) {
  ExpectRefused(R"({"max_in_flight": 4294967297})", R"("max_in_flight" is out of range)");
  ExpectRefused(R"({"max_token_bytes": -1})", R"("max_token_bytes" is out of range)");
  ExpectRefused(R"({"ledger": {"max_segment_bytes": -5}})",
                R"("ledger.max_segment_bytes" is out of range)");
  const auto parsed = ParseConfig(
      R"({"clock_skew_seconds": -9223372036854775808, "max_token_bytes": 18446744073709551615})",
      "/data");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->clock_skew_seconds, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(parsed->max_token_bytes, std::numeric_limits<uint64_t>::max());
}

TEST(ConfigStrictnessTest, MissingCollectionFieldsAndBadJsonAreErrorsNotExceptions) {
  ExpectRefused(R"({"collections": [{"name": "x"}]})",
                R"(config: missing key "collections[0].generation_dir")");
  ExpectRefused("{not json", "config: [json.exception.parse_error");
  ExpectRefused("", "config: [json.exception.parse_error");
}

TEST(ConfigRoutingTest, HedgeAndReconnectKeysParseRoundTripAndAreBounded) {
  auto parsed = ParseConfig(R"({"plaintext": true, "shard_hedge_min_ms": 3,
                                "shard_hedge_max_ms": 300, "shard_hedge_budget_percent": 50,
                                "shard_reconnect_backoff_ms": 2000})",
                            "/data");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->shard_hedge_min_ms, 3);
  EXPECT_EQ(parsed->shard_hedge_max_ms, 300);
  EXPECT_EQ(parsed->shard_hedge_budget_percent, 50);
  EXPECT_EQ(parsed->shard_reconnect_backoff_ms, 2000);
  EXPECT_TRUE(ValidateConfig(*parsed).ok());
  auto again = ParseConfig(ConfigToJson(*parsed), "/data");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->shard_hedge_max_ms, 300);
  EXPECT_EQ(again->shard_reconnect_backoff_ms, 2000);
  ExpectRefused(R"({"shard_hedge_delay_ms": 3})", R"(config: unknown key "shard_hedge_delay_ms")");
  for (const char* bad :
       {R"({"plaintext": true, "shard_hedge_min_ms": 0})",
        R"({"plaintext": true, "shard_hedge_min_ms": 50, "shard_hedge_max_ms": 20})",
        R"({"plaintext": true, "shard_hedge_budget_percent": 101})",
        R"({"plaintext": true, "shard_reconnect_backoff_ms": 10})"}) {
    auto config = ParseConfig(bad, "/data");
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(ValidateConfig(*config).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

// A count whose 0 lets the server decide: it parses, round-trips through ConfigToJson, is 0 when
// unset and refuses negatives.
void ExpectCountKey(const std::string& key, int value, int ServerConfig::*field) {
  SCOPED_TRACE(key);
  auto config_with = [&](int v) {
    return ParseConfig("{\"plaintext\": true, \"" + key + "\": " + std::to_string(v) + "}",
                       "/data");
  };
  auto parsed = config_with(value);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ((*parsed).*field, value);
  EXPECT_TRUE(ValidateConfig(*parsed).ok());
  auto again = ParseConfig(ConfigToJson(*parsed), "/data");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again).*field, value);
  auto unset = ParseConfig(R"({"plaintext": true})", "/data");
  ASSERT_TRUE(unset.ok()) << unset.status();
  EXPECT_EQ((*unset).*field, 0);
  auto negative = config_with(-1);
  ASSERT_TRUE(negative.ok()) << negative.status();
  EXPECT_EQ(ValidateConfig(*negative).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConfigRoutingTest, SearchTogetherFromParsesRoundTripsAndRefusesNegatives) {
  ExpectCountKey("search_together_from", 100000, &ServerConfig::search_together_from);
}

TEST(ConfigRoutingTest, SplitByMeasurementIsOnUnlessTurnedOffAndRoundTrips) {
  auto unset = ParseConfig(R"({"plaintext": true})", "/data");
  ASSERT_TRUE(unset.ok()) << unset.status();
  EXPECT_TRUE(unset->split_by_measurement);
  auto off = ParseConfig(R"({"plaintext": true, "split_by_measurement": false})", "/data");
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->split_by_measurement);
  auto again = ParseConfig(ConfigToJson(*off), "/data");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->split_by_measurement);
  EXPECT_FALSE(ParseConfig(R"({"plaintext": true, "split_by_measurement": 1})", "/data").ok());
}

TEST(ConfigRoutingTest, GrpcCompletionQueuesParseRoundTripAndRefuseNegatives) {
  ExpectCountKey("grpc_completion_queues", 3, &ServerConfig::grpc_completion_queues);
}

TEST(ConfigStrictnessTest, NullTlsMeansNoTls) {
  const auto parsed = ParseConfig(R"({"tls": null, "shard_client_tls": null})", "/data");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_FALSE(parsed->tls.has_value());
  EXPECT_FALSE(parsed->shard_client_tls.has_value());
}

TEST(ConfigDemoTest, TheDemoKeyIsRefusedAndOnlyTheFlagRelaxesTheTransportRules) {
  const std::string network_plaintext =
      R"({"listen": "0.0.0.0:7443", "plaintext": true, "ledger": {"fsync": false}})";
  // The file cannot claim to be a demo, whatever it says.
  for (const char* demo : {"true", "false"}) {
    const std::string with_demo = absl::StrReplaceAll(
        network_plaintext,
        {{R"("plaintext")", absl::StrCat(R"("demo": )", demo, R"(, "plaintext")")}});
    ExpectRefused(with_demo, R"(config: "demo" is not a config key: only the --demo flag)");
  }
  // Without the key the file parses, and is refused unless the --demo flag sets config.demo.
  auto config = ParseConfig(network_plaintext, "/data");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->demo);
  const absl::Status refused = ValidateConfig(*config);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(refused.message(), "plaintext is refused")) << refused;
  config->plaintext = false;
  config->tls = TlsConfig{"s.pem", "s.key", "", false};
  EXPECT_TRUE(absl::StrContains(ValidateConfig(*config).message(), "fsync")) << "fsync rule";
  config->tls.reset();
  config->plaintext = true;
  config->demo = true;  // what `probity serve --demo` does
  EXPECT_TRUE(ValidateConfig(*config).ok()) << ValidateConfig(*config);
  // And the flag never reaches a file.
  EXPECT_FALSE(absl::StrContains(ConfigToJson(*config), "\"demo\":"));
}

// Parses and validates a loopback plaintext config with `metrics` as its "metrics" value.
absl::Status MetricsConfigStatus(const std::string& metrics) {
  auto config = ParseConfig(
      absl::StrCat(R"({"listen": "127.0.0.1:7443", "plaintext": true, "metrics": )", metrics, "}"),
      "/data");
  if (!config.ok()) return config.status();
  return ValidateConfig(*config);
}

TEST(ConfigMetricsTest, AbsentMeansOffAndTheKeyRoundTrips) {
  auto off = ParseConfig(R"({"listen": "127.0.0.1:7443"})", "/data");
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->metrics.has_value());
  EXPECT_FALSE(absl::StrContains(ConfigToJson(*off), "metrics"));

  auto on = ParseConfig(R"({"metrics": {"address": "127.0.0.1:9464"}})", "/data");
  ASSERT_TRUE(on.ok()) << on.status();
  ASSERT_TRUE(on->metrics.has_value());
  EXPECT_EQ(on->metrics->address, "127.0.0.1:9464");
  EXPECT_FALSE(on->metrics->allow_non_loopback);
  auto again = ParseConfig(ConfigToJson(*on), "/data");
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(again->metrics.has_value());
  EXPECT_EQ(again->metrics->address, "127.0.0.1:9464");
}

TEST(ConfigMetricsTest, LoopbackAddressesAreAccepted) {
  for (const char* address : {"127.0.0.1:9464", "127.0.0.1:0", "[::1]:9464"}) {
    EXPECT_TRUE(MetricsConfigStatus(absl::StrCat(R"({"address": ")", address, R"("})")).ok())
        << address << ": " << MetricsConfigStatus(absl::StrCat(R"({"address": ")", address, "\"}"));
  }
}

TEST(ConfigMetricsTest, MalformedAddressesAndKeysAreRefusedClearly) {
  for (const char* address : {"localhost:9464", "127.0.0.1", "127.0.0.1:", "127.0.0.1:99999",
                              "127.0.0.1:94a4", ":9464", "", "::1:9464", "[::1]", "0.0.0.0:-1"}) {
    const absl::Status status =
        MetricsConfigStatus(absl::StrCat(R"({"address": ")", address, R"("})"));
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << address;
    EXPECT_TRUE(absl::StrContains(
        status.message(), R"(config: "metrics.address" must be an IP address and port such as)"))
        << address << ": " << status;
  }
  auto expect = [](const std::string& metrics, const std::string& message) {
    const absl::Status status = MetricsConfigStatus(metrics);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << metrics;
    EXPECT_TRUE(absl::StrContains(status.message(), message)) << metrics << ": " << status;
  };
  expect("{}", R"(config: missing key "metrics.address")");
  expect(R"({"address": "127.0.0.1:9464", "port": 9464})", R"(config: unknown key "metrics.port")");
  expect(R"({"address": 9464})", R"(config: "metrics.address" must be a string)");
  expect(R"("127.0.0.1:9464")", R"(config: "metrics" must be an object)");
  expect(R"({"address": "0.0.0.0:9464", "allow_non_loopback": "yes"})",
         R"(config: "metrics.allow_non_loopback" must be true or false)");
}

TEST(ConfigMetricsTest, ANonLoopbackAddressNeedsTheOperatorsExplicitConsent) {
  for (const char* address : {"0.0.0.0:9464", "10.1.2.3:9464", "[::]:9464"}) {
    const absl::Status refused =
        MetricsConfigStatus(absl::StrCat(R"({"address": ")", address, R"("})"));
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << address;
    EXPECT_TRUE(absl::StrContains(refused.message(), "is not loopback")) << refused;
    EXPECT_TRUE(absl::StrContains(refused.message(), R"("metrics.allow_non_loopback": true)"))
        << refused;
    EXPECT_TRUE(MetricsConfigStatus(
                    absl::StrCat(R"({"address": ")", address, R"(", "allow_non_loopback": true})"))
                    .ok())
        << address;
  }
}

using ScratchDir = test_support::ScopedTempDir;

TEST(ConfigDemoTest, DemoConfigHasNoDemoKeyAndNeedsTheFlagOffLoopback) {
  ScratchDir dir;
  ASSERT_FALSE(dir.path().empty());
  auto demo = probity::demo::PrepareDemo(dir.path() / "demo", "0.0.0.0:7443", /*identities=*/200);
  ASSERT_TRUE(demo.ok()) << demo.status();
  absl::StatusOr<std::string> text = common::ReadFileToString(demo->config_file);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_FALSE(absl::StrContains(*text, "\"demo\":")) << *text;
  auto config = LoadConfig(demo->config_file);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(ValidateConfig(*config).ok()) << "plaintext on 0.0.0.0 without --demo";
  config->demo = true;
  EXPECT_TRUE(ValidateConfig(*config).ok()) << ValidateConfig(*config);
}

// The JSON blocks of deploy/k8s/configmap.yaml ("name.json: |" followed by indented lines).
std::vector<std::pair<std::string, std::string>> ConfigMapJson(const std::filesystem::path& file) {
  std::vector<std::pair<std::string, std::string>> blocks;
  std::ifstream in(file);
  std::string line;
  bool in_block = false;
  while (std::getline(in, line)) {
    const size_t indent = line.find_first_not_of(' ');
    if (in_block && (indent == std::string::npos || indent > 2)) {
      blocks.back().second += line + "\n";
      continue;
    }
    in_block = false;
    if (indent == 2 && absl::EndsWith(line, ".json: |")) {
      blocks.push_back({line.substr(2, line.size() - 2 - 3), ""});
      in_block = true;
    }
  }
  return blocks;
}

TEST(ConfigFilesTest, KubernetesConfigMapConfigsParseAndValidate) {
  const char* source = std::getenv("PROBITY_SOURCE_DIR");
  ASSERT_NE(source, nullptr) << "PROBITY_SOURCE_DIR is set by the test main";
  const auto blocks = ConfigMapJson(std::filesystem::path(source) / "deploy/k8s/configmap.yaml");
  ASSERT_EQ(blocks.size(), 5u) << "router.json and shard-0..3.json";
  for (const auto& [name, json] : blocks) {
    const auto config = ParseConfig(json, "/var/lib/probity");
    ASSERT_TRUE(config.ok()) << name << ": " << config.status();
    EXPECT_TRUE(ValidateConfig(*config).ok()) << name << ": " << ValidateConfig(*config);
    EXPECT_TRUE(config->tls.has_value()) << name;
    // Scraped on the pod IP (deploy/k8s annotations), so off loopback by the operator's choice.
    ASSERT_TRUE(config->metrics.has_value()) << name;
    EXPECT_EQ(config->metrics->address, "0.0.0.0:9464") << name;
  }
}

// The port of a "host:port" address.
std::string PortOf(const std::string& address) { return address.substr(address.rfind(':') + 1); }

// The YAML document of `file` ("---"-separated) whose kind is `kind`, empty when none.
std::string ManifestOfKind(const std::filesystem::path& file, const std::string& kind) {
  const absl::StatusOr<std::string> text = common::ReadFileToString(file);
  EXPECT_TRUE(text.ok()) << text.status();
  std::istringstream in(text.value_or(""));
  std::string document, line;
  auto of_kind = [&] { return absl::StrContains(document, "\nkind: " + kind + "\n"); };
  while (std::getline(in, line)) {
    if (line == "---") {
      if (of_kind()) return document;
      document.clear();
      continue;
    }
    document += line + "\n";
  }
  return of_kind() ? document : "";
}

// Every listener of the router's config is declared where its other ports are: the container
// ports of its Deployment, and the "probity" Service for what callers reach (gRPC and the
// auditors' HTTPS report), never the metrics port (pod IP only).
TEST(ConfigFilesTest, KubernetesRouterDeclaresEveryListenerOfItsConfig) {
  const char* source = std::getenv("PROBITY_SOURCE_DIR");
  ASSERT_NE(source, nullptr) << "PROBITY_SOURCE_DIR is set by the test main";
  const std::filesystem::path k8s = std::filesystem::path(source) / "deploy/k8s";
  const auto blocks = ConfigMapJson(k8s / "configmap.yaml");
  ASSERT_FALSE(blocks.empty());
  ASSERT_EQ(blocks.front().first, "router.json");
  const auto config = ParseConfig(blocks.front().second, "/var/lib/probity");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->report_http.has_value()) << "the auditors' report listener";
  ASSERT_TRUE(config->metrics.has_value());
  // The report listener needs TLS with client certificates (ReportHttpServer refuses to start
  // without them).
  ASSERT_TRUE(config->tls.has_value());
  EXPECT_FALSE(config->tls->client_ca_file.empty());

  const std::string deployment = ManifestOfKind(k8s / "router-deployment.yaml", "Deployment");
  const std::string service = ManifestOfKind(k8s / "router-deployment.yaml", "Service");
  ASSERT_FALSE(deployment.empty());
  ASSERT_FALSE(service.empty());
  for (const std::string& address :
       {config->listen, config->report_http->address, config->metrics->address}) {
    EXPECT_TRUE(absl::StrContains(deployment, "containerPort: " + PortOf(address) + "\n"))
        << address << " is not a container port of the router";
  }
  for (const std::string& address : {config->listen, config->report_http->address}) {
    EXPECT_TRUE(absl::StrContains(service, " port: " + PortOf(address) + "\n"))
        << address << " is not in the router's Service";
  }
  EXPECT_FALSE(absl::StrContains(service, PortOf(config->metrics->address)))
      << "metrics are for the scraper on the pod IP, never a Service";
}

// Each shard server's config uses what its pod requests: as many GPUs (nvidia.com/gpu) as the
// StatefulSet asks for, with dynamic batching, which a GPU needs to reach its throughput.
TEST(ConfigFilesTest, KubernetesShardServersServeFromTheGpusTheirPodsRequest) {
  const char* source = std::getenv("PROBITY_SOURCE_DIR");
  ASSERT_NE(source, nullptr) << "PROBITY_SOURCE_DIR is set by the test main";
  const std::filesystem::path k8s = std::filesystem::path(source) / "deploy/k8s";
  const std::string statefulset = ManifestOfKind(k8s / "shard-statefulset.yaml", "StatefulSet");
  ASSERT_FALSE(statefulset.empty());
  const std::string key = "nvidia.com/gpu: ";
  const size_t request = statefulset.find(key);
  ASSERT_NE(request, std::string::npos) << "the shard pods request GPUs";
  const int gpus = std::stoi(statefulset.substr(request + key.size()));
  int shard_configs = 0;
  for (const auto& [name, json] : ConfigMapJson(k8s / "configmap.yaml")) {
    if (!absl::StartsWith(name, "shard-")) continue;
    ++shard_configs;
    const auto config = ParseConfig(json, "/var/lib/probity");
    ASSERT_TRUE(config.ok()) << name << ": " << config.status();
    ASSERT_TRUE(config->gpu.has_value()) << name << " leaves its pod's GPU idle";
    EXPECT_EQ(config->gpu->devices.size(), static_cast<size_t>(gpus)) << name;
    EXPECT_TRUE(config->batching.enabled) << name;
  }
  EXPECT_EQ(shard_configs, 4);
}

}  // namespace
}  // namespace probity::service::testing
