// HTTPS: the server presents a certificate from a throwaway CA made at test
// time; a client that trusts the CA talks to it, one that does not refuses.
#include <gtest/gtest.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cstdlib>
#include <filesystem>

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
        "-subj /CN=other-ca 2>/dev/null";
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

  static inline std::filesystem::path dir_;
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
