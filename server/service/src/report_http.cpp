#include "probity/service/report_http.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "probity/ledger/checkpoint.h"
#include "probity/report/report.h"
#include "probity/service/search_entry.h"

namespace probity::service {
namespace {

constexpr size_t kMaxParameterBytes = 256;
constexpr size_t kMaxRequestHeadBytes = 16 << 10;
constexpr int kWorkers = 2;
constexpr size_t kMaxWaiting = 16;
constexpr int kIoTimeoutSeconds = 10;
constexpr char kPath[] = "/report";

// The verified client certificate's common name (as gRPC's x509_common_name), if any.
std::optional<std::string> CertificateIdentity(SSL* ssl) {
  X509* certificate = SSL_get0_peer_certificate(ssl);
  if (certificate == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return std::nullopt;
  char name[256];
  const int length = X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName,
                                               name, sizeof(name));
  if (length <= 0) return std::nullopt;
  return std::string(name, static_cast<size_t>(length));
}

const char* StatusText(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Internal Server Error";
  }
}

ReportHttpServer::Response Text(int status, std::string text) {
  return {status, "text/plain; charset=utf-8", text + "\n"};
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded: '+' is a space, %XX a byte; a bad escape stays as is.
std::string UrlDecode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 &&
               HexValue(text[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// A time bound: unix seconds or RFC 3339, as unix microseconds.
absl::StatusOr<int64_t> ParseTime(const std::string& text) {
  if (!text.empty() && text.size() <= 12 &&
      text.find_first_not_of("0123456789") == std::string::npos) {
    return int64_t{std::stoll(text)} * 1000000;
  }
  absl::Time time;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &time, &error)) {
    return absl::InvalidArgumentError(absl::StrCat("bad time '", text, "': ", error));
  }
  return absl::ToUnixMicros(time);
}

// The report's filters from the query string; unknown or repeated parameters are refused.
absl::StatusOr<report::ReportFilter> ParseFilter(const std::string& query) {
  report::ReportFilter filter;
  std::map<std::string, std::string> values;
  {
    for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
      const size_t equals = pair.find('=');
      const std::string name =
          UrlDecode(std::string_view(pair.data(), std::min(equals, pair.size())));
      const std::string value =
          equals == absl::string_view::npos
              ? std::string()
              : UrlDecode(std::string_view(pair.data() + equals + 1, pair.size() - equals - 1));
      if (name != "case" && name != "warrant" && name != "investigator" && name != "since" &&
          name != "until") {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown parameter '", name.substr(0, kMaxParameterBytes),
                         "' (known: case, warrant, investigator, since, until)"));
      }
      if (value.size() > kMaxParameterBytes) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, " is longer than ", kMaxParameterBytes, " bytes"));
      }
      if (!values.emplace(name, value).second) {
        return absl::InvalidArgumentError(absl::StrCat(name, " is given twice"));
      }
    }
  }
  filter.case_number = values["case"];
  filter.warrant_id = values["warrant"];
  filter.investigator = values["investigator"];
  for (const char* bound : {"since", "until"}) {
    if (values[bound].empty()) continue;
    auto micros = ParseTime(values[bound]);
    if (!micros.ok()) return micros.status();
    (std::string_view(bound) == "since" ? filter.since_unix_micros : filter.until_unix_micros) =
        *micros;
  }
  return filter;
}

std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrCat("\\u00", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

ReportHttpServer::ReportHttpServer(const ServerConfig& config, AuditLog& audit)
    : config_(config), audit_(audit), auditors_("auditor", config.auditors) {}

absl::StatusOr<std::unique_ptr<ReportHttpServer>> ReportHttpServer::Start(
    const ServerConfig& config, AuditLog& audit) {
  if (!config.report_http) return absl::InvalidArgumentError("config: no report_http");
  if (!config.tls || config.tls->client_ca_file.empty()) {
    return absl::InvalidArgumentError(
        "config: report_http needs \"tls\" with client_ca_file: auditors are admitted by their "
        "client certificates, as on the gRPC listener");
  }
  std::unique_ptr<ReportHttpServer> server(new ReportHttpServer(config, audit));
  if (absl::Status status = server->Listen(); !status.ok()) return status;
  server->acceptor_ = std::thread([raw = server.get()] { raw->AcceptLoop(); });
  for (int i = 0; i < kWorkers; ++i) {
    server->workers_.emplace_back([raw = server.get()] { raw->WorkerLoop(); });
  }
  spdlog::info("oversight report for auditors on https://{}{} (port {})",
               config.report_http->address, kPath, server->port_);
  return server;
}

// The server's certificate and key; client certificates must chain to the configured CA only
// (never the system's CAs). A client without one completes the handshake and is answered 401.
absl::Status ReportHttpServer::Listen() {
  const TlsConfig& tls = *config_.tls;
  const std::string cert = Resolve(config_, tls.cert_file).string();
  const std::string key = Resolve(config_, tls.key_file).string();
  const std::string ca = Resolve(config_, tls.client_ca_file).string();
  ssl_context_ = SSL_CTX_new(TLS_server_method());
  if (ssl_context_ == nullptr || SSL_CTX_set_min_proto_version(ssl_context_, TLS1_2_VERSION) != 1 ||
      SSL_CTX_use_certificate_chain_file(ssl_context_, cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ssl_context_, key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ssl_context_) != 1 ||
      SSL_CTX_load_verify_locations(ssl_context_, ca.c_str(), nullptr) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        "report_http: cannot load the tls certificate, key or client CA");
  }
  SSL_CTX_set_verify(ssl_context_, SSL_VERIFY_PEER, nullptr);
  static constexpr unsigned char kSessionContext[] = "probity-report";
  SSL_CTX_set_session_id_context(ssl_context_, kSessionContext, sizeof(kSessionContext) - 1);

  const std::string& address = config_.report_http->address;
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError("config: report_http.address must be host:port");
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string port = address.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found) != 0 ||
      found == nullptr) {
    return absl::InvalidArgumentError("config: report_http.address " + address +
                                      " does not resolve");
  }
  listen_fd_ = socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, found->ai_protocol);
  const int one = 1;
  const bool bound =
      listen_fd_ >= 0 && setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
      bind(listen_fd_, found->ai_addr, found->ai_addrlen) == 0 && listen(listen_fd_, 64) == 0;
  freeaddrinfo(found);
  if (!bound) return absl::UnavailableError("report_http: cannot listen on " + address);
  sockaddr_storage local{};
  socklen_t length = sizeof(local);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&local), &length);
  port_ = ntohs(local.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&local)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&local)->sin_port);
  return absl::OkStatus();
}

ReportHttpServer::~ReportHttpServer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  if (acceptor_.joinable()) acceptor_.join();
  for (std::thread& worker : workers_) worker.join();
  for (int fd : waiting_) close(fd);
  if (listen_fd_ >= 0) close(listen_fd_);
  if (ssl_context_ != nullptr) SSL_CTX_free(ssl_context_);
}

void ReportHttpServer::AcceptLoop() {
  while (true) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
    pollfd listening{listen_fd_, POLLIN, 0};
    if (poll(&listening, 1, 200) <= 0) continue;
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    // A slow or silent client holds a worker for at most this long per read or write.
    timeval timeout{kIoTimeoutSeconds, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    std::lock_guard lock(mutex_);
    if (waiting_.size() >= kMaxWaiting) {
      close(fd);
      continue;
    }
    waiting_.push_back(fd);
    ready_.notify_one();
  }
}

void ReportHttpServer::WorkerLoop() {
  while (true) {
    int fd = -1;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [&] { return stopping_ || !waiting_.empty(); });
      if (stopping_) return;
      fd = waiting_.front();
      waiting_.pop_front();
    }
    HandleConnection(fd);
    close(fd);
  }
}

void ReportHttpServer::HandleConnection(int fd) {
  SSL* ssl = SSL_new(ssl_context_);
  if (ssl == nullptr) return;
  SSL_set_fd(ssl, fd);
  if (SSL_accept(ssl) != 1) {  // includes a certificate that does not chain to the CA
    ERR_clear_error();
    SSL_free(ssl);
    return;
  }
  // The request head: up to the blank line, bounded.
  std::string head;
  char buffer[4096];
  bool complete = false;
  while (head.size() <= kMaxRequestHeadBytes) {
    const int n = SSL_read(ssl, buffer, sizeof(buffer));
    if (n <= 0) break;
    head.append(buffer, static_cast<size_t>(n));
    if (head.find("\r\n\r\n") != std::string::npos) {
      complete = true;
      break;
    }
  }
  Response response;
  if (!complete) {
    response = head.size() > kMaxRequestHeadBytes ? Text(431, "the request head is over 16 KiB")
                                                  : Text(400, "incomplete request");
  } else {
    const std::vector<std::string> lines =
        absl::StrSplit(head.substr(0, head.find("\r\n\r\n")), "\r\n");
    const std::vector<std::string> request_line = absl::StrSplit(lines.front(), ' ');
    std::optional<std::string> token;
    for (size_t i = 1; i < lines.size(); ++i) {
      constexpr absl::string_view kAuthorization = "authorization:";
      if (absl::StartsWithIgnoreCase(lines[i], kAuthorization)) {
        const std::string value(absl::StripAsciiWhitespace(lines[i].substr(kAuthorization.size())));
        token = absl::StartsWithIgnoreCase(value, "bearer ") ? value.substr(7) : std::string();
      }
    }
    sockaddr_storage peer{};
    socklen_t length = sizeof(peer);
    char address[INET6_ADDRSTRLEN] = "unknown";
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &length) == 0) {
      const void* raw =
          peer.ss_family == AF_INET6
              ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&peer)->sin6_addr)
              : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&peer)->sin_addr);
      inet_ntop(peer.ss_family, raw, address, sizeof(address));
    }
    response =
        request_line.size() != 3 || !absl::StartsWith(request_line[2], "HTTP/1.")
            ? Text(400, "not an HTTP/1.x request")
            : Answer(request_line[0], request_line[1], token, CertificateIdentity(ssl), address);
  }
  const std::string reply = absl::StrCat(
      "HTTP/1.1 ", response.status, " ", StatusText(response.status),
      "\r\nContent-Type: ", response.content_type, "\r\nContent-Length: ", response.body.size(),
      "\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
      "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\n"
      "Connection: close\r\n\r\n",
      response.body);
  size_t written = 0;
  while (written < reply.size()) {
    const int n = SSL_write(ssl, reply.data() + written,
                            static_cast<int>(std::min<size_t>(reply.size() - written, 1 << 20)));
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  SSL_shutdown(ssl);
  ERR_clear_error();
  SSL_free(ssl);
}

ReportHttpServer::Response ReportHttpServer::Answer(const std::string& method,
                                                    const std::string& target,
                                                    const std::optional<std::string>& token,
                                                    const std::optional<std::string>& identity,
                                                    const std::string& peer) {
  const size_t question = target.find('?');
  const std::string path = target.substr(0, question);
  if (path != kPath) return Text(404, "not found: the report is at /report");
  if (method != "GET") return Text(405, "only GET");
  const absl::StatusOr<std::string> auditor = auditors_.Admit(token, identity);
  if (!auditor.ok()) {
    const bool unauthenticated = absl::IsUnauthenticated(auditor.status());
    const std::string caller = identity ? absl::StrCat("tls:", *identity) : "peer:" + peer;
    v1::LedgerEntry entry;
    entry.set_time_unix_micros(NowMicros());
    entry.set_kind(v1::ENTRY_KIND_REFUSAL);
    entry.set_outcome(v1::OUTCOME_REFUSED);
    if (identity) {
      entry.mutable_investigator()->set_tls_identity(BoundedText(*identity, kMaxRecordedNameBytes));
    }
    entry.mutable_refusal()->set_code(unauthenticated ? "caller_unauthenticated"
                                                      : "caller_not_permitted");
    entry.mutable_refusal()->set_message(BoundedText(
        absl::StrCat("HTTPS GET /report refused for ", caller, ": ", auditor.status().message()),
        kMaxRecordedMessageBytes));
    if (auto recorded = audit_.AppendRefusal(std::move(entry), {caller, false}); !recorded.ok()) {
      spdlog::error("refused report request not recorded: {}",
                    std::string(recorded.status().message()));
    }
    return Text(unauthenticated ? 401 : 403,
                std::string(auditor.status().message()) +
                    " (the report is for auditors: present an auditor's client certificate)");
  }
  auto filter = ParseFilter(question == std::string::npos ? "" : target.substr(question + 1));
  if (!filter.ok()) return Text(400, std::string(filter.status().message()));

  // On the record before anything is read for the auditor.
  v1::LedgerEntry entry;
  entry.set_time_unix_micros(NowMicros());
  entry.set_kind(v1::ENTRY_KIND_ADMIN);
  entry.set_outcome(v1::OUTCOME_REQUESTED);
  if (identity) entry.mutable_investigator()->set_tls_identity(*identity);
  v1::AdminAction* action = entry.mutable_admin();
  action->set_action("report");
  action->set_operator_(*auditor);
  action->set_reason("oversight report served over HTTPS to an auditor");
  action->set_detail(absl::StrCat("{\"case\":", JsonString(filter->case_number),
                                  ",\"warrant\":", JsonString(filter->warrant_id),
                                  ",\"investigator\":", JsonString(filter->investigator),
                                  ",\"since_unix_micros\":", filter->since_unix_micros.value_or(0),
                                  ",\"until_unix_micros\":", filter->until_unix_micros.value_or(0),
                                  "}"));
  auto receipt = audit_.Append(entry);
  if (!receipt.ok()) {
    spdlog::error("report for {} not recorded, so not served: {}", *auditor,
                  std::string(receipt.status().message()));
    return Text(503, "the request could not be recorded in the ledger; nothing served");
  }

  auto verifier = ledger::NoteVerifier::FromVerifierKey(audit_.ledger().VerifierKey());
  if (!verifier.ok()) return Text(500, std::string(verifier.status().message()));
  report::ReportOptions options;
  options.ledger_dir = Resolve(config_, config_.ledger.dir);
  options.origin = config_.ledger.origin;
  options.filter = *std::move(filter);
  options.generated_at_unix_micros = NowMicros();
  auto html = report::RenderReport(options, *verifier);
  if (!html.ok()) {
    spdlog::error("report for {} (entry {}) not rendered: {}", *auditor, receipt->index,
                  std::string(html.status().message()));
    return Text(absl::IsFailedPrecondition(html.status()) ? 409 : 500,
                std::string(html.status().message()));
  }
  return {200, "text/html; charset=utf-8", *std::move(html)};
}

}  // namespace probity::service
