#pragma once

// The oversight report (probity/report/report.h) served over HTTPS to auditors only:
// `GET /report?case=&warrant=&investigator=&since=&until=` on `report_http.address`.
//
// Same credentials as the gRPC Ledger API: the listener presents the server's `tls`
// certificate, verifies client certificates against `tls.client_ca_file` only, and admits only
// the configured `auditors` (by certificate identity, the subject's common name, or bearer
// token). No credential: 401; another role's: 403; both are REFUSAL entries, rate-limited per
// caller like every refusal of a caller without a warrant. Each report served is first recorded
// as an ADMIN entry (action "report", the auditor, the filters); if that append fails nothing
// is served.
//
// A small HTTP/1.1 server on OpenSSL: one request per connection (GET only, request head at
// most 16 KiB, 10 s to send it), two workers (a report re-hashes the whole ledger, so at most
// two are rendered at once) and at most 16 connections waiting; more are closed at once.
// Debian 12's civetweb 1.15 was tried first: it resolves OpenSSL 1.1's SSL_get_peer_certificate,
// which OpenSSL 3 no longer exports, and crashes on every TLS connection.

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "probity/service/audit_log.h"
#include "probity/service/auth.h"
#include "probity/service/config.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace probity::service {

class ReportHttpServer {
 public:
  // Needs `report_http`, and `tls` with `client_ca_file`.
  static absl::StatusOr<std::unique_ptr<ReportHttpServer>> Start(const ServerConfig& config,
                                                                 AuditLog& audit);
  ~ReportHttpServer();
  ReportHttpServer(const ReportHttpServer&) = delete;
  ReportHttpServer& operator=(const ReportHttpServer&) = delete;

  int port() const { return port_; }

  struct Response {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
  };

 private:
  ReportHttpServer(const ServerConfig& config, AuditLog& audit);
  absl::Status Listen();
  void AcceptLoop();
  void WorkerLoop();
  void HandleConnection(int fd);
  // The answer to one request, given who the caller is.
  Response Answer(const std::string& method, const std::string& target,
                  const std::optional<std::string>& token,
                  const std::optional<std::string>& identity, const std::string& peer);

  ServerConfig config_;
  AuditLog& audit_;
  RoleGate auditors_;
  SSL_CTX* ssl_context_ = nullptr;
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread acceptor_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<int> waiting_;  // accepted connections
  bool stopping_ = false;
};

}  // namespace probity::service
