#include "probity/service/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "probity/common/file_read.h"

namespace probity::service {
namespace {

using nlohmann::json;

// Reads one JSON object of the config and remembers which keys were read, so that a key nobody
// reads (a misspelt "require_client_cert" would otherwise silently stay false) is an error
// naming its full path. The first error sticks: later reads do nothing, and ParseConfig returns
// it. Adding a config key is one Optional()/Required() line where the value is stored.
class ObjectReader {
 public:
  // Runs `read` over the object at `path` and then refuses any key it did not read.
  static void Read(const json& value, const std::string& path, absl::Status* status,
                   const std::function<void(ObjectReader&)>& read) {
    if (!status->ok()) return;
    if (!value.is_object()) {
      *status = TypeError(path.empty() ? "the top level" : Quoted(path), "an object", value);
      return;
    }
    ObjectReader reader(value, path, status);
    read(reader);
    reader.RefuseUnreadKeys();
  }

  // Leaves *out unchanged when the key is absent.
  template <typename T>
  void Optional(const char* key, T* out) {
    if (const json* value = Find(key)) Convert(*value, PathOf(key), out);
  }

  template <typename T>
  void Required(const char* key, T* out) {
    if (const json* value = Find(key)) {
      Convert(*value, PathOf(key), out);
    } else if (status_->ok()) {
      *status_ =
          absl::InvalidArgumentError(absl::StrCat("config: missing key ", Quoted(PathOf(key))));
    }
  }

  // A nested object; `read` runs only when the key is present and not null.
  void Object(const char* key, const std::function<void(ObjectReader&)>& read) {
    const json* value = Find(key);
    if (value != nullptr && !value->is_null()) Read(*value, PathOf(key), status_, read);
  }

  // An array of objects; `read` runs once per element.
  void Objects(const char* key, const std::function<void(ObjectReader&)>& read) {
    const json* value = Find(key);
    if (value == nullptr) return;
    if (!value->is_array()) {
      Fail(TypeError(Quoted(PathOf(key)), "an array", *value));
      return;
    }
    for (size_t i = 0; i < value->size(); ++i) {
      Read((*value)[i], absl::StrCat(PathOf(key), "[", i, "]"), status_, read);
    }
  }

  // A key that was once valid and is now refused with its own explanation.
  void Retired(const char* key, const std::string& why) {
    if (object_.contains(key)) {
      read_.insert(key);
      Fail(absl::InvalidArgumentError(absl::StrCat("config: ", Quoted(PathOf(key)), " ", why)));
    }
  }

 private:
  ObjectReader(const json& object, std::string path, absl::Status* status)
      : object_(object), path_(std::move(path)), status_(status) {}

  // As a JSON string, so that a key with quotes or control characters reads unambiguously.
  static std::string Quoted(const std::string& path) {
    return json(path).dump(-1, ' ', false, json::error_handler_t::replace);
  }

  static absl::Status TypeError(const std::string& what, const char* expected, const json& got) {
    // The offending value itself where it is short, so that the message shows what was written.
    std::string shown = got.is_structured()
                            ? absl::StrCat("an ", got.is_array() ? "array" : "object")
                            : got.dump(-1, ' ', false, json::error_handler_t::replace);
    if (shown.size() > 40) shown = absl::StrCat(shown.substr(0, 37), "...");
    return absl::InvalidArgumentError(
        absl::StrCat("config: ", what, " must be ", expected, ", not ", shown));
  }

  std::string PathOf(const std::string& key) const {
    return path_.empty() ? key : absl::StrCat(path_, ".", key);
  }

  const json* Find(const char* key) {
    read_.insert(key);
    if (!status_->ok()) return nullptr;
    const auto it = object_.find(key);
    return it == object_.end() ? nullptr : &*it;
  }

  void Fail(absl::Status status) {
    if (status_->ok()) *status_ = std::move(status);
  }

  void RefuseUnreadKeys() {
    for (const auto& [key, value] : object_.items()) {
      if (!read_.count(key)) {
        Fail(absl::InvalidArgumentError(absl::StrCat("config: unknown key ", Quoted(PathOf(key)))));
        return;
      }
    }
  }

  void Convert(const json& value, const std::string& path, std::string* out) {
    if (!value.is_string()) return Fail(TypeError(Quoted(path), "a string", value));
    *out = value.get<std::string>();
  }
  void Convert(const json& value, const std::string& path, std::filesystem::path* out) {
    std::string text;
    Convert(value, path, &text);
    if (status_->ok()) *out = text;
  }
  void Convert(const json& value, const std::string& path, bool* out) {
    if (!value.is_boolean()) return Fail(TypeError(Quoted(path), "true or false", value));
    *out = value.get<bool>();
  }
  void Convert(const json& value, const std::string& path, double* out) {
    if (!value.is_number()) return Fail(TypeError(Quoted(path), "a number", value));
    *out = value.get<double>();
  }
  // Integers: a fraction or a value outside the field's range is an error, never truncated.
  template <typename Int>
  requires std::is_integral_v<Int>
  void Convert(const json& value, const std::string& path, Int* out) {
    if (!value.is_number_integer()) return Fail(TypeError(Quoted(path), "an integer", value));
    const bool fits = value.is_number_unsigned() ? std::in_range<Int>(value.get<uint64_t>())
                                                 : std::in_range<Int>(value.get<int64_t>());
    if (!fits) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("config: ", Quoted(path), " is out of range: ", value.dump())));
    }
    *out = value.get<Int>();
  }
  template <typename T>
  void Convert(const json& value, const std::string& path, std::vector<T>* out) {
    if (!value.is_array()) return Fail(TypeError(Quoted(path), "an array", value));
    std::vector<T> elements(value.size());
    for (size_t i = 0; i < value.size() && status_->ok(); ++i) {
      Convert(value[i], absl::StrCat(path, "[", i, "]"), &elements[i]);
    }
    if (status_->ok()) *out = std::move(elements);
  }

  const json& object_;
  const std::string path_;
  absl::Status* const status_;
  std::set<std::string> read_;
};

json TlsTo(const TlsConfig& tls) {
  return {{"cert_file", tls.cert_file.string()},
          {"key_file", tls.key_file.string()},
          {"client_ca_file", tls.client_ca_file.string()},
          {"require_client_cert", tls.require_client_cert}};
}

void ReadTls(ObjectReader& r, const char* key, std::optional<TlsConfig>* out) {
  r.Object(key, [&](ObjectReader& t) {
    TlsConfig& tls = out->emplace();
    t.Optional("cert_file", &tls.cert_file);
    t.Optional("key_file", &tls.key_file);
    t.Optional("client_ca_file", &tls.client_ca_file);
    t.Optional("require_client_cert", &tls.require_client_cert);
  });
}

void ReadMembers(ObjectReader& r, const char* key, std::vector<RoleMember>* out) {
  r.Objects(key, [&](ObjectReader& m) {
    RoleMember& member = out->emplace_back();
    m.Optional("name", &member.name);
    m.Optional("token_sha256", &member.token_sha256);
    m.Optional("tls_identity", &member.tls_identity);
  });
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
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config: ", e.what()));
  }
  ServerConfig c;
  c.data_dir = data_dir_default;
  std::string gpu_ids = "gpu";
  std::string gpu_host_wait = "auto";
  absl::Status status;
  ObjectReader::Read(j, "", &status, [&](ObjectReader& r) {
    r.Optional("data_dir", &c.data_dir);
    r.Optional("listen", &c.listen);
    r.Optional("deployment", &c.deployment);
    r.Optional("jwks_file", &c.jwks_file);
    r.Optional("revocation_file", &c.revocation_file);
    r.Optional("state_dir", &c.state_dir);
    r.Optional("key_reload_seconds", &c.key_reload_seconds);
    r.Optional("clock_skew_seconds", &c.clock_skew_seconds);
    r.Optional("max_warrant_lifetime_hours", &c.max_warrant_lifetime_hours);
    r.Optional("max_token_bytes", &c.max_token_bytes);
    r.Object("ledger", [&](ObjectReader& l) {
      l.Optional("dir", &c.ledger.dir);
      l.Optional("origin", &c.ledger.origin);
      l.Optional("signing_key", &c.ledger.signing_key);
      l.Optional("fsync", &c.ledger.fsync);
      l.Optional("max_segment_bytes", &c.ledger.max_segment_bytes);
    });
    r.Objects("collections", [&](ObjectReader& col) {
      CollectionConfig& cc = c.collections.emplace_back();
      col.Required("name", &cc.name);
      col.Required("generation_dir", &cc.generation_dir);
      col.Optional("shards", &cc.shards);
    });
    r.Optional("shard_servers", &c.shard_servers);
    ReadTls(r, "tls", &c.tls);
    ReadTls(r, "shard_client_tls", &c.shard_client_tls);
    r.Optional("plaintext", &c.plaintext);
    // A file could make any address a demo; only the --demo flag of `probity serve` may.
    r.Retired("demo",
              "is not a config key: only the --demo flag of `probity serve` relaxes the TLS "
              "and fsync rules; remove it");
    ReadMembers(r, "operators", &c.operators);
    ReadMembers(r, "auditors", &c.auditors);
    ReadMembers(r, "routers", &c.routers);
    r.Optional("max_in_flight", &c.max_in_flight);
    r.Optional("omp_threads_per_search", &c.omp_threads_per_search);
    r.Optional("fanout_threads", &c.fanout_threads);
    r.Optional("search_together_from", &c.search_together_from);
    r.Optional("split_by_measurement", &c.split_by_measurement);
    r.Optional("grpc_completion_queues", &c.grpc_completion_queues);
    r.Optional("default_nprobe", &c.default_nprobe);
    r.Optional("shard_deadline_ms", &c.shard_deadline_ms);
    r.Optional("shard_hedge_min_ms", &c.shard_hedge_min_ms);
    r.Optional("shard_hedge_max_ms", &c.shard_hedge_max_ms);
    r.Optional("shard_hedge_budget_percent", &c.shard_hedge_budget_percent);
    r.Optional("shard_reconnect_backoff_ms", &c.shard_reconnect_backoff_ms);
    r.Optional("drain_seconds", &c.drain_seconds);
    r.Optional("refusal_rate_per_second", &c.refusal_rate_per_second);
    r.Optional("refusal_rate_per_caller_per_second", &c.refusal_rate_per_caller_per_second);
    r.Optional("refusal_callers_tracked", &c.refusal_callers_tracked);
    r.Optional("max_queries_per_request", &c.max_queries_per_request);
    r.Optional("max_justification_bytes", &c.max_justification_bytes);
    // The object turns batching on unless it says "enabled": false.
    r.Object("batching", [&](ObjectReader& b) {
      c.batching.enabled = true;
      b.Optional("enabled", &c.batching.enabled);
      b.Optional("max_batch_queries", &c.batching.max_batch_queries);
      b.Optional("max_wait_us", &c.batching.max_wait_us);
      b.Optional("next_call_first", &c.batching.next_call_first);
      b.Optional("direct_wakeups", &c.batching.direct_wakeups);
    });
    r.Object("report_http",
             [&](ObjectReader& h) { h.Required("address", &c.report_http.emplace().address); });
    r.Object("gpu", [&](ObjectReader& g) {
      index::GpuOptions& gpu = c.gpu.emplace();
      g.Required("devices", &gpu.devices);
      g.Optional("float16_lookup_tables", &gpu.float16_lookup_tables);
      g.Optional("ids", &gpu_ids);
      g.Optional("temp_memory_mb", &gpu.temp_memory_mb);
      g.Optional("copies_per_shard", &gpu.copies_per_shard);
      g.Optional("host_wait", &gpu_host_wait);
    });
    r.Object("metrics", [&](ObjectReader& m) {
      m.Required("address", &c.metrics.emplace().address);
      m.Optional("allow_non_loopback", &c.metrics->allow_non_loopback);
    });
  });
  if (!status.ok()) return status;
  if (c.gpu) {
    auto ids = index::ParseGpuIdPlacement(gpu_ids);
    if (!ids.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("config: gpu.ids: ", ids.status().message()));
    }
    c.gpu->ids = *ids;
    auto host_wait = index::ParseGpuHostWait(gpu_host_wait);
    if (!host_wait.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("config: gpu.host_wait: ", host_wait.status().message()));
    }
    c.gpu->host_wait = *host_wait;
  }
  return c;
}

absl::StatusOr<ServerConfig> LoadConfig(const std::filesystem::path& file) {
  absl::StatusOr<std::string> text = common::ReadFileToString(file);
  if (!text.ok()) return text.status();
  auto config = ParseConfig(*text, file.parent_path());
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
  j["operators"] = MembersTo(c.operators);
  j["auditors"] = MembersTo(c.auditors);
  if (!c.routers.empty()) j["routers"] = MembersTo(c.routers);
  j["max_in_flight"] = c.max_in_flight;
  j["omp_threads_per_search"] = c.omp_threads_per_search;
  j["fanout_threads"] = c.fanout_threads;
  j["search_together_from"] = c.search_together_from;
  j["split_by_measurement"] = c.split_by_measurement;
  j["grpc_completion_queues"] = c.grpc_completion_queues;
  j["default_nprobe"] = c.default_nprobe;
  j["shard_deadline_ms"] = c.shard_deadline_ms;
  j["shard_hedge_min_ms"] = c.shard_hedge_min_ms;
  j["shard_hedge_max_ms"] = c.shard_hedge_max_ms;
  j["shard_hedge_budget_percent"] = c.shard_hedge_budget_percent;
  j["shard_reconnect_backoff_ms"] = c.shard_reconnect_backoff_ms;
  j["drain_seconds"] = c.drain_seconds;
  j["refusal_rate_per_second"] = c.refusal_rate_per_second;
  j["refusal_rate_per_caller_per_second"] = c.refusal_rate_per_caller_per_second;
  j["refusal_callers_tracked"] = c.refusal_callers_tracked;
  j["max_queries_per_request"] = c.max_queries_per_request;
  j["max_justification_bytes"] = c.max_justification_bytes;
  if (c.batching.enabled) {
    j["batching"] = {{"max_batch_queries", c.batching.max_batch_queries},
                     {"max_wait_us", c.batching.max_wait_us},
                     {"next_call_first", c.batching.next_call_first},
                     {"direct_wakeups", c.batching.direct_wakeups}};
  }
  if (c.gpu) {
    j["gpu"] = {{"devices", c.gpu->devices},
                {"float16_lookup_tables", c.gpu->float16_lookup_tables},
                {"ids", index::GpuIdPlacementName(c.gpu->ids)},
                {"temp_memory_mb", c.gpu->temp_memory_mb},
                {"copies_per_shard", c.gpu->copies_per_shard},
                {"host_wait", index::GpuHostWaitName(c.gpu->host_wait)}};
  }
  if (c.report_http) j["report_http"] = {{"address", c.report_http->address}};
  if (c.metrics) {
    j["metrics"] = {{"address", c.metrics->address},
                    {"allow_non_loopback", c.metrics->allow_non_loopback}};
  }
  return j.dump(2) + "\n";
}

bool IsLoopbackAddress(const std::string& host_port) {
  const auto colon = host_port.rfind(':');
  const std::string host = colon == std::string::npos ? host_port : host_port.substr(0, colon);
  return host == "127.0.0.1" || host == "localhost" || host == "[::1]" || host == "::1";
}

absl::Status ValidateMetricsConfig(const MetricsConfig& metrics) {
  // The HTTP server binds literal addresses only, so a host name is refused here, not at bind.
  const std::string& address = metrics.address;
  const auto colon = address.rfind(':');
  std::string host = colon == std::string::npos ? "" : address.substr(0, colon);
  const std::string port = colon == std::string::npos ? "" : address.substr(colon + 1);
  const bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) host = host.substr(1, host.size() - 2);
  unsigned char parsed[sizeof(in6_addr)];
  const bool host_ok = bracketed ? ::inet_pton(AF_INET6, host.c_str(), parsed) == 1
                                 : ::inet_pton(AF_INET, host.c_str(), parsed) == 1;
  const bool port_ok =
      !port.empty() && port.size() <= 5 &&
      std::all_of(port.begin(), port.end(), [](char d) { return d >= '0' && d <= '9'; }) &&
      std::stoi(port) <= 65535;
  if (!host_ok || !port_ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config: \"metrics.address\" must be an IP address and port such as 127.0.0.1:9464 or "
        "[::1]:9464, not \"",
        address, "\""));
  }
  if (!IsLoopbackAddress(address) && !metrics.allow_non_loopback) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config: \"metrics.address\" ", address,
        " is not loopback; metrics show when and how much this service searches, so serve them "
        "on loopback, or set \"metrics.allow_non_loopback\": true where only the monitoring "
        "system can reach that address"));
  }
  return absl::OkStatus();
}

BatchingOptions BatchingOptionsFor(const ServerConfig& config) {
  BatchingOptions options{config.batching.max_batch_queries,
                          absl::Microseconds(config.batching.max_wait_us)};
  options.next_call_first = config.batching.next_call_first;
  options.direct_wakeups = config.batching.direct_wakeups;
  options.calls_in_flight = config.gpu ? config.gpu->copies_per_shard : 1;
  return options;
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
  if (c.metrics) {
    if (absl::Status s = ValidateMetricsConfig(*c.metrics); !s.ok()) return s;
  }
  if (c.max_in_flight < 1) return absl::InvalidArgumentError("config: max_in_flight < 1");
  if (c.grpc_completion_queues < 0) {
    return absl::InvalidArgumentError(
        "config: grpc_completion_queues < 0 (0 = gRPC's default of one)");
  }
  if (c.search_together_from < 0) {
    return absl::InvalidArgumentError("config: search_together_from < 0 (0 = the number of cores)");
  }
  if (c.omp_threads_per_search < 1) {
    return absl::InvalidArgumentError("config: omp_threads_per_search < 1");
  }
  // Bounds of the Search path: each one keeps what a caller can make the server read or write.
  if (!(c.refusal_rate_per_second > 0) || !(c.refusal_rate_per_caller_per_second > 0) ||
      c.refusal_callers_tracked < 1) {
    return absl::InvalidArgumentError(
        "config: refusal_rate_per_second, refusal_rate_per_caller_per_second and "
        "refusal_callers_tracked must be positive");
  }
  if (c.max_queries_per_request < 1 || c.max_queries_per_request > (1 << 20)) {
    return absl::InvalidArgumentError("config: max_queries_per_request must be 1 .. 1048576");
  }
  if (c.max_justification_bytes < 0 || c.max_justification_bytes > (1 << 20)) {
    return absl::InvalidArgumentError("config: max_justification_bytes must be 0 .. 1048576");
  }
  if (c.shard_deadline_ms < 1 || c.shard_hedge_min_ms < 1 ||
      c.shard_hedge_max_ms < c.shard_hedge_min_ms || c.shard_hedge_budget_percent < 0 ||
      c.shard_hedge_budget_percent > 100 || c.shard_reconnect_backoff_ms < 100 ||
      c.shard_reconnect_backoff_ms > 120'000) {
    return absl::InvalidArgumentError(
        "config: needs shard_deadline_ms >= 1, 1 <= shard_hedge_min_ms <= shard_hedge_max_ms, "
        "shard_hedge_budget_percent 0 .. 100 and shard_reconnect_backoff_ms 100 .. 120000");
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
