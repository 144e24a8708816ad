// The oversight report over HTTPS (`report_http`): a real TLS client over loopback. Only an
// auditor's client certificate opens it (investigators, operators and callers without a
// certificate are refused and recorded); each report served is first an ADMIN entry naming
// the auditor and the filters, which are the query parameters.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "../ledger/ledger_test_util.h"
#include "probity/ledger/reader.h"
#include "probity/service/server.h"
#include "probity/v1/search.grpc.pb.h"
#include "test_support.h"

namespace probity::service::testing {
namespace {

bool OpensslAvailable() { return std::system("openssl version >/dev/null 2>&1") == 0; }

// A CA, a server certificate for localhost/127.0.0.1, and client certificates by common name.
class Pki {
 public:
  explicit Pki(std::filesystem::path dir) : dir_(std::move(dir)) {
    ok_ = Shell(
              "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
              "-keyout ca.key -out ca.pem -days 1 -subj /CN=probity-test-ca") &&
          Issue("server", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1") &&
          Shell("chmod 600 *.key");
  }
  bool ok() const { return ok_; }
  bool Issue(const std::string& name, const std::string& common_name,
             const std::string& extension = "") {
    std::ofstream(dir_ / (name + ".ext")) << extension << "\n";
    return Shell("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " +
                 name + ".key -out " + name + ".csr -subj /CN=" + common_name) &&
           Shell("openssl x509 -req -in " + name + ".csr -CA ca.pem -CAkey ca.key " +
                 "-CAcreateserial -days 1 -out " + name + ".pem" +
                 (extension.empty() ? "" : " -extfile " + name + ".ext")) &&
           Shell("chmod 600 " + name + ".key");
  }
  // A certificate with the auditor's name from a CA the server does not trust.
  bool IssueForeign(const std::string& name, const std::string& common_name) {
    return Shell(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout " +
        name + ".key -out " + name + ".pem -days 1 -subj /CN=" + common_name);
  }
  std::filesystem::path File(const std::string& name) const { return dir_ / name; }

 private:
  bool Shell(const std::string& command) const {
    return std::system(("cd " + dir_.string() + " && " + command + " >/dev/null 2>&1").c_str()) ==
           0;
  }
  std::filesystem::path dir_;
  bool ok_ = false;
};

struct HttpResponse {
  bool connected = false;  // the TLS handshake completed and a response came back
  int status = 0;
  std::string headers, body;
};

// GET over TLS 1.2+ with OpenSSL, checking the server against `ca`; `client` names the
// client certificate and key (empty: none).
HttpResponse HttpsGet(int port, const std::string& target, const Pki& pki,
                      const std::string& client) {
  HttpResponse result;
  SSL_CTX* context = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  SSL_CTX_load_verify_locations(context, pki.File("ca.pem").c_str(), nullptr);
  SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nullptr);
  if (!client.empty()) {
    SSL_CTX_use_certificate_file(context, pki.File(client + ".pem").c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_use_PrivateKey_file(context, pki.File(client + ".key").c_str(), SSL_FILETYPE_PEM);
  }
  BIO* bio = BIO_new_ssl_connect(context);
  SSL* ssl = nullptr;
  BIO_get_ssl(bio, &ssl);
  SSL_set_tlsext_host_name(ssl, "localhost");
  SSL_set1_host(ssl, "localhost");
  BIO_set_conn_hostname(bio, ("127.0.0.1:" + std::to_string(port)).c_str());
  if (BIO_do_connect(bio) == 1 && BIO_do_handshake(bio) == 1) {
    const std::string request =
        "GET " + target + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    BIO_write(bio, request.data(), static_cast<int>(request.size()));
    std::string response;
    char buffer[16384];
    for (int n; (n = BIO_read(bio, buffer, sizeof(buffer))) > 0;) response.append(buffer, n);
    const size_t end = response.find("\r\n\r\n");
    if (end != std::string::npos && response.starts_with("HTTP/1.1 ")) {
      result.connected = true;
      result.status = std::stoi(response.substr(9, 3));
      result.headers = response.substr(0, end);
      result.body = response.substr(end + 4);
    }
  }
  ERR_clear_error();
  BIO_free_all(bio);
  SSL_CTX_free(context);
  return result;
}

class ReportHttpTest : public SharedWorldTest<ReportHttpTest, 2> {
 protected:
  void SetUp() override {
    if (!OpensslAvailable())
      GTEST_SKIP() << "the openssl command (Debian package openssl) is missing";
    const int counter = UseOwnLedgerAndState("report-http-");
    std::filesystem::create_directories(world_->dir->path() / ("pki-" + std::to_string(counter)));
    pki_ = std::make_unique<Pki>(world_->dir->path() / ("pki-" + std::to_string(counter)));
    ASSERT_TRUE(pki_->ok());
    ASSERT_TRUE(pki_->Issue("auditor", "auditor-1"));
    ASSERT_TRUE(pki_->Issue("operator", "operator-1"));
    ASSERT_TRUE(pki_->Issue("investigator", "investigator-7"));
    ASSERT_TRUE(pki_->IssueForeign("forged", "auditor-1"));
    config_.plaintext = false;
    config_.tls = TlsConfig{pki_->File("server.pem"), pki_->File("server.key"),
                            pki_->File("ca.pem"), /*require_client_cert=*/false};
    config_.operators = {{"cert-operator", "", "operator-1"}};
    config_.auditors = {{"cert-auditor", "", "auditor-1"}};
    config_.report_http = ReportHttpConfig{"127.0.0.1:0"};
    auto server = Server::StartRouter(config_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_GT(server_->report_http_port(), 0);
  }

  std::vector<v1::LedgerEntry> Entries() {
    std::vector<v1::LedgerEntry> entries;
    EXPECT_TRUE(ledger::ReadEntries(Resolve(config_, config_.ledger.dir), 0,
                                    [&](uint64_t, std::string_view bytes) {
                                      entries.emplace_back().ParseFromArray(
                                          bytes.data(), static_cast<int>(bytes.size()));
                                      return true;
                                    })
                    .ok());
    return entries;
  }

  std::unique_ptr<Pki> pki_;
  std::unique_ptr<Server> server_;
};

TEST_F(ReportHttpTest, AuditorGetsTheReportAndItIsRecordedFirst) {
  const HttpResponse response =
      HttpsGet(server_->report_http_port(),
               "/report?case=CASE-2026-001&investigator=investigator-7", *pki_, "auditor");
  ASSERT_TRUE(response.connected);
  EXPECT_EQ(response.status, 200) << response.body;
  EXPECT_NE(response.headers.find("Content-Type: text/html; charset=utf-8"), std::string::npos);
  EXPECT_NE(response.headers.find("Cache-Control: no-store"), std::string::npos);
  EXPECT_TRUE(response.body.starts_with("<!DOCTYPE html>"));
  EXPECT_NE(response.body.find("Probity oversight report"), std::string::npos);
  EXPECT_NE(response.body.find("case CASE-2026-001, investigator investigator-7"),
            std::string::npos);
  // The request is in the ledger (and so in the report it asked for): who, which filters.
  const auto entries = Entries();
  ASSERT_FALSE(entries.empty());
  const v1::LedgerEntry& recorded = entries.front();
  EXPECT_EQ(recorded.kind(), v1::ENTRY_KIND_ADMIN);
  EXPECT_EQ(recorded.admin().action(), "report");
  EXPECT_EQ(recorded.admin().operator_(), "cert-auditor");
  EXPECT_NE(recorded.admin().detail().find("\"case\":\"CASE-2026-001\""), std::string::npos);
  EXPECT_NE(recorded.admin().detail().find("\"investigator\":\"investigator-7\""),
            std::string::npos);
  EXPECT_NE(response.body.find("<td class=\"action\">report</td><td>cert-auditor</td>"),
            std::string::npos);

  // Bad filters are refused, not ignored.
  EXPECT_EQ(HttpsGet(server_->report_http_port(), "/report?cas=CASE-1", *pki_, "auditor").status,
            400);
  EXPECT_EQ(
      HttpsGet(server_->report_http_port(), "/report?since=yesterday", *pki_, "auditor").status,
      400);
  EXPECT_EQ(HttpsGet(server_->report_http_port(), "/elsewhere", *pki_, "auditor").status, 404);
}

TEST_F(ReportHttpTest, EveryOtherCallerIsRefusedAndRecorded) {
  const int port = server_->report_http_port();
  const HttpResponse investigator = HttpsGet(port, "/report", *pki_, "investigator");
  ASSERT_TRUE(investigator.connected);
  EXPECT_EQ(investigator.status, 403);
  EXPECT_EQ(investigator.body.find("<html"), std::string::npos);
  const HttpResponse operator_ = HttpsGet(port, "/report", *pki_, "operator");
  ASSERT_TRUE(operator_.connected);
  EXPECT_EQ(operator_.status, 403);
  const HttpResponse anonymous = HttpsGet(port, "/report", *pki_, "");
  ASSERT_TRUE(anonymous.connected);
  EXPECT_EQ(anonymous.status, 401);
  // A certificate naming the auditor from another CA fails the handshake.
  EXPECT_FALSE(HttpsGet(port, "/report", *pki_, "forged").connected);

  int refusals = 0;
  for (const v1::LedgerEntry& entry : Entries()) {
    EXPECT_NE(entry.kind(), v1::ENTRY_KIND_ADMIN);  // no report was served
    if (entry.kind() == v1::ENTRY_KIND_REFUSAL) {
      ++refusals;
      EXPECT_NE(entry.refusal().message().find("HTTPS GET /report refused"), std::string::npos);
    }
  }
  EXPECT_EQ(refusals, 3);
}

TEST_F(ReportHttpTest, ALedgerThatDoesNotVerifyGetsNoReport) {
  const int port = server_->report_http_port();
  ASSERT_EQ(HttpsGet(port, "/report", *pki_, "auditor").status, 200);
  // Entry 0 (that report's request) changed behind the server's back, checksum fixed.
  const auto segment = ledger::testing::SegmentFiles(Resolve(config_, config_.ledger.dir)).front();
  const std::string original = ledger::testing::ReadFile(segment);
  auto records = ledger::testing::ParseAllRecords(original);
  ASSERT_FALSE(records.empty());
  const size_t at = records.front().payload.find("cert-auditor");
  ASSERT_NE(at, std::string::npos);
  records.front().payload.replace(at, 12, "cert-auditos");
  ledger::testing::WriteFile(segment, ledger::testing::RebuildSegment(original, records));

  const HttpResponse refused = HttpsGet(port, "/report", *pki_, "auditor");
  ASSERT_TRUE(refused.connected);
  EXPECT_EQ(refused.status, 409);
  EXPECT_NE(refused.body.find("does not verify"), std::string::npos) << refused.body;
  EXPECT_EQ(refused.body.find("<html"), std::string::npos);
}

TEST_F(ReportHttpTest, NeedsMutualTlsConfigured) {
  ServerConfig config = config_;
  config.tls->client_ca_file.clear();
  config.ledger.dir = config_.ledger.dir.string() + "-no-ca";
  auto server = Server::StartRouter(config);
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("report_http needs"), std::string::npos);
}

TEST(ReportHttpConfigTest, ParsedStrictlyAndWrittenBack) {
  auto config = ParseConfig(R"({"report_http": {"address": "127.0.0.1:8443"}})", "/tmp");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->report_http.has_value());
  EXPECT_EQ(config->report_http->address, "127.0.0.1:8443");
  EXPECT_NE(ConfigToJson(*config).find("\"report_http\""), std::string::npos);
  auto absent = ParseConfig("{}", "/tmp");
  ASSERT_TRUE(absent.ok());
  EXPECT_FALSE(absent->report_http.has_value());
  EXPECT_EQ(ConfigToJson(*absent).find("report_http"), std::string::npos);
  auto misspelt = ParseConfig(
      R"({"report_http": {"address": "127.0.0.1:8443", "adress": "127.0.0.1:8443"}})", "/tmp");
  ASSERT_FALSE(misspelt.ok());
  EXPECT_NE(misspelt.status().message().find("report_http.adress"), std::string::npos);
  EXPECT_FALSE(ParseConfig(R"({"report_http": {}})", "/tmp").ok());
}

}  // namespace
}  // namespace probity::service::testing
