// HTTPS: the server presents a certificate from a throwaway CA made at test
// time; a client that trusts the CA talks to it, one that does not refuses.
#include <gtest/gtest.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "test_support.hpp"

namespace metrics::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;

class TlsFixture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::filesystem::temp_directory_path() / ("metrics-tls-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    const std::string d = dir_.string();
    // A CA, and a server certificate for 127.0.0.1 signed by it.
    const std::string script =
        "set -e; cd '" + d +
        "'; "
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 "
        "-subj /CN=metrics-test-ca 2>/dev/null; "
        "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
        "-subj /CN=127.0.0.1 2>/dev/null; "
        "printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf; "
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out server.pem -days 1 -extfile ext.cnf 2>/dev/null; "
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 1 "
        "-subj /CN=other-ca 2>/dev/null; "
        // The renewed certificate: a new key, signed by the other CA.
        "openssl req -newkey rsa:2048 -nodes -keyout renewed.key -out renewed.csr "
        "-subj /CN=127.0.0.1 2>/dev/null; "
        "openssl x509 -req -in renewed.csr -CA other.pem -CAkey other.key -CAcreateserial "
        "-out renewed.pem -days 1 -extfile ext.cnf 2>/dev/null";
    ASSERT_EQ(std::system(script.c_str()), 0) << "openssl failed";
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }

  static server::ServerConfig tls_config() {
    auto c = TestServer::default_config();
    c.tls_cert = (dir_ / "server.pem").string();
    c.tls_key = (dir_ / "server.key").string();
    return c;
  }

  // One HTTPS request; throws on any TLS or HTTP failure.
  static Response https_request(std::uint16_t port, const std::string& ca_file, Request req) {
    asio::io_context ioc;
    ssl::context ctx(ssl::context::tls_client);
    ctx.load_verify_file(ca_file);
    ctx.set_verify_mode(ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
    stream.set_verify_callback(ssl::host_name_verification("127.0.0.1"));
    beast::get_lowest_layer(stream).connect({asio::ip::address_v4::loopback(), port});
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds{10});
    stream.handshake(ssl::stream_base::client);
    req.version(11);
    req.set(http::field::host, "127.0.0.1");
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    Response res;
    http::read(stream, buffer, res);
    return res;
  }

  static std::string path(const std::string& name) { return (dir_ / name).string(); }
  // Puts a certificate and key where the server reads them, as a renewal
  // tool would (copy over the old files).
  static void install(const std::string& cert, const std::string& key) {
    const auto over = std::filesystem::copy_options::overwrite_existing;
    std::filesystem::copy_file(dir_ / cert, dir_ / "live.pem", over);
    std::filesystem::copy_file(dir_ / key, dir_ / "live.key", over);
  }

  static inline std::filesystem::path dir_;
};

// One kept-alive HTTPS connection.
class HttpsConnection {
 public:
  HttpsConnection(std::uint16_t port, const std::string& ca_file)
      : ctx_(ssl::context::tls_client), stream_(ioc_, ctx_) {
    ctx_.load_verify_file(ca_file);
    ctx_.set_verify_mode(ssl::verify_peer);
    stream_.set_verify_callback(ssl::host_name_verification("127.0.0.1"));
    beast::get_lowest_layer(stream_).connect({asio::ip::address_v4::loopback(), port});
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds{10});
    stream_.handshake(ssl::stream_base::client);
  }
  Response get(const std::string& target) {
    Request req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds{10});
    http::write(stream_, req);
    Response res;
    http::read(stream_, buffer_, res);
    return res;
  }

 private:
  asio::io_context ioc_;
  ssl::context ctx_;
  beast::ssl_stream<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
};

TEST_F(TlsFixture, TrustedClientWritesAndReads) {
  TestServer server(tls_config());
  const std::string ca = (dir_ / "ca.pem").string();
  auto res = https_request(server.port(), ca, Request{http::verb::post, "/update/counter/t/3", 11});
  EXPECT_EQ(res.result_int(), 200);
  res = https_request(server.port(), ca, Request{http::verb::get, "/value/counter/t", 11});
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "3");
}

TEST_F(TlsFixture, UntrustedCertificateIsRefusedByTheClient) {
  TestServer server(tls_config());
  EXPECT_THROW(https_request(server.port(), (dir_ / "other.pem").string(),
                             Request{http::verb::get, "/ping", 11}),
               boost::system::system_error);
}

TEST_F(TlsFixture, PlainHttpToTheTlsPortGetsNoAnswerAndServerKeepsServing) {
  TestServer server(tls_config());
  {
    Client plain(server.port());
    EXPECT_ANY_THROW(plain.get("/ping"));
  }
  auto res = https_request(server.port(), (dir_ / "ca.pem").string(),
                           Request{http::verb::get, "/ping", 11});
  EXPECT_EQ(res.result_int(), 200);
}

// A certificate renewed in place (the --tls-cert/--tls-key files copied
// over) is read again at a reload: new connections get it, an open one
// keeps going on the old; a renewal that is broken changes nothing.
TEST_F(TlsFixture, ReloadRenewsTheCertificateAndKeepsOpenConnections) {
  install("server.pem", "server.key");
  auto c = TestServer::default_config();
  c.tls_cert = path("live.pem");
  c.tls_key = path("live.key");
  TestServer server(c);
  const auto get_ping = [&](const std::string& ca) {
    return https_request(server.port(), path(ca), Request{http::verb::get, "/ping", 11});
  };
  HttpsConnection kept(server.port(), path("ca.pem"));
  EXPECT_EQ(kept.get("/ping").result_int(), 200);

  install("renewed.pem", "renewed.key");
  EXPECT_EQ(server.server().reload_web_config(), std::nullopt);
  EXPECT_EQ(get_ping("other.pem").result_int(), 200);  // the renewed certificate
  EXPECT_THROW(get_ping("ca.pem"), boost::system::system_error);
  EXPECT_EQ(kept.get("/ping").result_int(), 200);  // accepted before: not dropped

  // A key that is not the certificate's, then a file that is no
  // certificate: each reload is refused naming the file, and the renewed
  // certificate stays in use.
  std::filesystem::copy_file(dir_ / "server.key", dir_ / "live.key",
                             std::filesystem::copy_options::overwrite_existing);
  auto error = server.server().reload_web_config();
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->find(path("live.key")), std::string::npos) << *error;
  EXPECT_NE(error->find("mismatch"), std::string::npos) << *error;
  EXPECT_EQ(get_ping("other.pem").result_int(), 200);
  std::ofstream(dir_ / "live.pem") << "not a certificate\n";
  error = server.server().reload_web_config();
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->find(path("live.pem")), std::string::npos) << *error;
  EXPECT_EQ(get_ping("other.pem").result_int(), 200);
  EXPECT_EQ(kept.get("/ping").result_int(), 200);
}

// tls_server_config may point at other files at a reload; TLS cannot be
// turned on at a reload (the port keeps speaking plain HTTP).
TEST_F(TlsFixture, ReloadFollowsTheWebConfigsCertificateFiles) {
  const auto web = path("web-tls.yml");
  std::ofstream(web) << "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n";
  auto c = TestServer::default_config();
  c.web_config = web;
  TestServer server(c);
  EXPECT_EQ(https_request(server.port(), path("ca.pem"), Request{http::verb::get, "/ping", 11})
                .result_int(),
            200);
  std::ofstream(web) << "tls_server_config:\n  cert_file: renewed.pem\n  key_file: renewed.key\n";
  EXPECT_EQ(server.server().reload_web_config(), std::nullopt);
  EXPECT_EQ(https_request(server.port(), path("other.pem"), Request{http::verb::get, "/ping", 11})
                .result_int(),
            200);

  const auto plain_web = path("web-plain.yml");
  std::ofstream(plain_web) << "basic_auth_users: {}\n";
  auto p = TestServer::default_config();
  p.web_config = plain_web;
  TestServer plain(p);
  std::ofstream(plain_web)
      << "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n";
  EXPECT_EQ(plain.server().reload_web_config(), std::nullopt);
  Client client(plain.port());
  EXPECT_EQ(client.get("/ping").result_int(), 200);
}

TEST(TlsConfig, CertificateWithoutKeyIsAnError) {
  EXPECT_THROW((void)server::load_server_config({"--tls-cert", "/x.pem"},
                                                [](const std::string&) { return std::nullopt; }),
               server::ConfigError);
}

TEST(TlsConfig, UnreadableCertificateStopsTheServer) {
  auto c = TestServer::default_config();
  c.tls_cert = "/nonexistent/cert.pem";
  c.tls_key = "/nonexistent/key.pem";
  storage::MemoryRepository repo;
  try {
    server::Server s(c, repo);
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/cert.pem"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace metrics::testing
