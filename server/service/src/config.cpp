#include "probity/service/config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace probity::service {
namespace {

using nlohmann::json;

std::optional<TlsConfig> TlsFrom(const json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  const json& t = j.at(key);
  TlsConfig tls;
  tls.cert_file = t.value("cert_file", "");
  tls.key_file = t.value("key_file", "");
  tls.client_ca_file = t.value("client_ca_file", "");
  tls.require_client_cert = t.value("require_client_cert", false);
  return tls;
}

json TlsTo(const TlsConfig& tls) {
  return {{"cert_file", tls.cert_file.string()},
          {"key_file", tls.key_file.string()},
          {"client_ca_file", tls.client_ca_file.string()},
          {"require_client_cert", tls.require_client_cert}};
}

std::vector<RoleMember> MembersFrom(const json& j, const char* key) {
  std::vector<RoleMember> members;
  if (!j.contains(key)) return members;
  for (const json& m : j.at(key)) {
    members.push_back(
        {m.value("name", ""), m.value("token_sha256", ""), m.value("tls_identity", "")});
  }
  return members;
}

json MembersTo(const std::vector<RoleMember>& members) {
  json out = json::array();
  for (const RoleMember& m : members) {
    json entry = {{"name", m.name}};
    if (!m.token_sha256.empty()) entry["token_sha256"] = m.token_sha256;
    if (!m.tls_identity.empty()) entry["tls_identity"] = m.tls_identity;
    out.push_back(entry);
  }
  return out;
}

}  // namespace

absl::StatusOr<ServerConfig> ParseConfig(const std::string& json_text,
                                         const std::filesystem::path& data_dir_default) {
  try {
    const json j = json::parse(json_text);
    ServerConfig c;
    c.data_dir = j.value("data_dir", data_dir_default.string());
    c.listen = j.value("listen", c.listen);
    c.deployment = j.value("deployment", "");
    c.jwks_file = j.value("jwks_file", c.jwks_file.string());
    c.revocation_file = j.value("revocation_file", "");
    c.state_dir = j.value("state_dir", c.state_dir.string());
    c.key_reload_seconds = j.value("key_reload_seconds", c.key_reload_seconds);
    c.clock_skew_seconds = j.value("clock_skew_seconds", c.clock_skew_seconds);
    c.max_warrant_lifetime_hours =
        j.value("max_warrant_lifetime_hours", c.max_warrant_lifetime_hours);
    c.max_token_bytes = j.value("max_token_bytes", c.max_token_bytes);
    if (j.contains("ledger")) {
      const json& l = j.at("ledger");
      c.ledger.dir = l.value("dir", c.ledger.dir.string());
      c.ledger.origin = l.value("origin", c.ledger.origin);
      c.ledger.signing_key = l.value("signing_key", c.ledger.signing_key.string());
      c.ledger.fsync = l.value("fsync", true);
      c.ledger.max_segment_bytes = l.value("max_segment_bytes", c.ledger.max_segment_bytes);
    }
    if (j.contains("collections")) {
      for (const json& col : j.at("collections")) {
        CollectionConfig cc;
        cc.name = col.at("name").get<std::string>();
        cc.generation_dir = col.at("generation_dir").get<std::string>();
        cc.shards = col.value("shards", std::vector<int>{});
        c.collections.push_back(std::move(cc));
      }
    }
    c.shard_servers = j.value("shard_servers", std::vector<std::string>{});
    c.tls = TlsFrom(j, "tls");
    c.shard_client_tls = TlsFrom(j, "shard_client_tls");
    c.plaintext = j.value("plaintext", false);
    c.demo = j.value("demo", false);
    c.operators = MembersFrom(j, "operators");
    c.auditors = MembersFrom(j, "auditors");
    c.routers = MembersFrom(j, "routers");
    c.max_in_flight = j.value("max_in_flight", c.max_in_flight);
    c.omp_threads_per_search = j.value("omp_threads_per_search", c.omp_threads_per_search);
    c.fanout_threads = j.value("fanout_threads", c.fanout_threads);
    c.default_nprobe = j.value("default_nprobe", c.default_nprobe);
    c.shard_deadline_ms = j.value("shard_deadline_ms", c.shard_deadline_ms);
    c.drain_seconds = j.value("drain_seconds", c.drain_seconds);
    c.refusal_rate_per_second = j.value("refusal_rate_per_second", c.refusal_rate_per_second);
    if (j.contains("batching") && !j.at("batching").is_null()) {
      const json& b = j.at("batching");
      c.batching.enabled = b.value("enabled", true);
      c.batching.max_batch_queries = b.value("max_batch_queries", c.batching.max_batch_queries);
      c.batching.max_wait_us = b.value("max_wait_us", c.batching.max_wait_us);
    }
    if (j.contains("gpu") && !j.at("gpu").is_null()) {
      const json& g = j.at("gpu");
      index::GpuOptions gpu;
      gpu.devices = g.at("devices").get<std::vector<int>>();
      gpu.float16_lookup_tables = g.value("float16_lookup_tables", gpu.float16_lookup_tables);
      auto ids = index::ParseGpuIdPlacement(g.value("ids", std::string("gpu")));
      if (!ids.ok())
        return absl::InvalidArgumentError(absl::StrCat("config: ", ids.status().message()));
      gpu.ids = *ids;
      gpu.temp_memory_mb = g.value("temp_memory_mb", gpu.temp_memory_mb);
      c.gpu = std::move(gpu);
    }
    return c;
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config: ", e.what()));
  }
}

absl::StatusOr<ServerConfig> LoadConfig(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config ", file.string()));
  std::stringstream text;
  text << in.rdbuf();
  auto config = ParseConfig(text.str(), file.parent_path());
  if (!config.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(file.string(), ": ", config.status().message()));
  }
  return config;
}

std::string ConfigToJson(const ServerConfig& c) {
  json j;
  j["data_dir"] = c.data_dir.string();
  j["listen"] = c.listen;
  j["deployment"] = c.deployment;
  j["jwks_file"] = c.jwks_file.string();
  if (!c.revocation_file.empty()) j["revocation_file"] = c.revocation_file.string();
  j["state_dir"] = c.state_dir.string();
  j["key_reload_seconds"] = c.key_reload_seconds;
  j["clock_skew_seconds"] = c.clock_skew_seconds;
  j["max_warrant_lifetime_hours"] = c.max_warrant_lifetime_hours;
  j["max_token_bytes"] = c.max_token_bytes;
  j["ledger"] = {{"dir", c.ledger.dir.string()},
                 {"origin", c.ledger.origin},
                 {"signing_key", c.ledger.signing_key.string()},
                 {"fsync", c.ledger.fsync},
                 {"max_segment_bytes", c.ledger.max_segment_bytes}};
  j["collections"] = json::array();
  for (const CollectionConfig& col : c.collections) {
    json entry = {{"name", col.name}, {"generation_dir", col.generation_dir.string()}};
    if (!col.shards.empty()) entry["shards"] = col.shards;
    j["collections"].push_back(entry);
  }
  if (!c.shard_servers.empty()) j["shard_servers"] = c.shard_servers;
  if (c.tls) j["tls"] = TlsTo(*c.tls);
  if (c.shard_client_tls) j["shard_client_tls"] = TlsTo(*c.shard_client_tls);
  j["plaintext"] = c.plaintext;
  j["demo"] = c.demo;
  j["operators"] = MembersTo(c.operators);
  j["auditors"] = MembersTo(c.auditors);
  if (!c.routers.empty()) j["routers"] = MembersTo(c.routers);
  j["max_in_flight"] = c.max_in_flight;
  j["omp_threads_per_search"] = c.omp_threads_per_search;
  j["fanout_threads"] = c.fanout_threads;
  j["default_nprobe"] = c.default_nprobe;
  j["shard_deadline_ms"] = c.shard_deadline_ms;
  j["drain_seconds"] = c.drain_seconds;
  j["refusal_rate_per_second"] = c.refusal_rate_per_second;
  if (c.batching.enabled) {
    j["batching"] = {{"max_batch_queries", c.batching.max_batch_queries},
                     {"max_wait_us", c.batching.max_wait_us}};
  }
  if (c.gpu) {
    j["gpu"] = {{"devices", c.gpu->devices},
                {"float16_lookup_tables", c.gpu->float16_lookup_tables},
                {"ids", index::GpuIdPlacementName(c.gpu->ids)},
                {"temp_memory_mb", c.gpu->temp_memory_mb}};
  }
  return j.dump(2) + "\n";
}

bool IsLoopbackAddress(const std::string& host_port) {
  const auto colon = host_port.rfind(':');
  const std::string host = colon == std::string::npos ? host_port : host_port.substr(0, colon);
  return host == "127.0.0.1" || host == "localhost" || host == "[::1]" || host == "::1";
}

absl::Status ValidateConfig(const ServerConfig& c) {
  if (c.tls) {
    if (c.tls->cert_file.empty() || c.tls->key_file.empty()) {
      return absl::InvalidArgumentError("config: tls needs cert_file and key_file");
    }
    if (c.tls->require_client_cert && c.tls->client_ca_file.empty()) {
      return absl::InvalidArgumentError("config: require_client_cert needs client_ca_file");
    }
  } else if (!c.plaintext) {
    return absl::InvalidArgumentError(
        "config: TLS is required (set \"tls\"); plaintext only with --demo or on loopback");
  } else if (!c.demo && !IsLoopbackAddress(c.listen)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config: plaintext is refused on the non-loopback address ", c.listen,
                     "; configure \"tls\""));
  }
  // Without fsync a crash can lose entries of searches already answered; that trade is for
  // demos, tests and benchmarks on loopback, never for a deployment others can reach.
  if (!c.ledger.fsync && !c.demo && !IsLoopbackAddress(c.listen)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config: ledger.fsync = false is refused on the non-loopback address ",
                     c.listen, "; a search is answered only once its ledger entry is durable"));
  }
  if (c.gpu) {
    if (absl::Status s = index::ValidateGpuOptions(*c.gpu); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("config: ", s.message()));
    }
  }
  if (c.max_in_flight < 1) return absl::InvalidArgumentError("config: max_in_flight < 1");
  if (c.omp_threads_per_search < 1) {
    return absl::InvalidArgumentError("config: omp_threads_per_search < 1");
  }
  // The wait is bounded so that a lone search is never held for long.
  if (c.batching.enabled && (c.batching.max_batch_queries < 1 || c.batching.max_wait_us < 0 ||
                             c.batching.max_wait_us > 1'000'000)) {
    return absl::InvalidArgumentError(
        "config: batching needs max_batch_queries >= 1 and max_wait_us in [0, 1000000]");
  }
  // A credential that opened both Admin and Ledger would mix the operator and auditor roles.
  std::set<std::string> operator_keys;
  for (const RoleMember& m : c.operators) {
    if (m.token_sha256.empty() && m.tls_identity.empty()) {
      return absl::InvalidArgumentError("config: operator " + m.name + " has no credential");
    }
    if (!m.token_sha256.empty()) operator_keys.insert("t:" + m.token_sha256);
    if (!m.tls_identity.empty()) operator_keys.insert("i:" + m.tls_identity);
  }
  for (const RoleMember& m : c.auditors) {
    if (m.token_sha256.empty() && m.tls_identity.empty()) {
      return absl::InvalidArgumentError("config: auditor " + m.name + " has no credential");
    }
    if (operator_keys.count("t:" + m.token_sha256) || operator_keys.count("i:" + m.tls_identity)) {
      return absl::InvalidArgumentError("config: auditor " + m.name +
                                        " shares a credential with an operator; roles are "
                                        "never mixed");
    }
  }
  return absl::OkStatus();
}

std::filesystem::path Resolve(const ServerConfig& config, const std::filesystem::path& path) {
  if (path.empty() || path.is_absolute()) return path;
  return config.data_dir / path;
}

}  // namespace probity::service
