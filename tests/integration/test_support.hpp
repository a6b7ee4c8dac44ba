// Helpers for the HTTP-level tests: an in-process server on a free loopback
// port and a small blocking HTTP/1.1 client.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <ostream>
#include <string>
#include <thread>

#include "metrics/server/config.hpp"
#include "metrics/server/server.hpp"
#include "metrics/storage/memory_repository.hpp"

namespace metrics::testing {

namespace http = boost::beast::http;
using Response = http::response<http::string_body>;
using Request = http::request<http::string_body>;

// Runs a Server on 127.0.0.1:<free port> in a background thread.
class TestServer {
 public:
  explicit TestServer(server::ServerConfig config = default_config(),
                      std::shared_ptr<storage::Repository> repo = nullptr,
                      server::ServerHooks hooks = {})
      : repo_(repo ? std::move(repo) : std::make_shared<storage::MemoryRepository>()),
        server_(config, *repo_, std::move(hooks)),
        thread_([this] { server_.run(); }) {}
  ~TestServer() { stop(); }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  static server::ServerConfig default_config() {
    server::ServerConfig c;
    c.address = "127.0.0.1:0";
    c.threads = 2;
    c.access_log = false;
    c.storage.file_path.clear();
    // Memory only: tests run in parallel and must not share the default
    // history dir's lock.
    c.history_dir.clear();
    return c;
  }

  void stop() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  [[nodiscard]] std::uint16_t port() const { return server_.port(); }
  [[nodiscard]] storage::Repository& repo() { return *repo_; }
  [[nodiscard]] server::Server& server() { return server_; }

 private:
  std::shared_ptr<storage::Repository> repo_;
  server::Server server_;
  std::thread thread_;
};

// One kept-alive connection.
class Client {
 public:
  explicit Client(std::uint16_t port) : stream_(ioc_) {
    stream_.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::address_v4::loopback(), port));
  }

  Response send(Request req) {
    req.version(11);
    if (req[http::field::host].empty()) req.set(http::field::host, "127.0.0.1");
    req.prepare_payload();
    http::write(stream_, req);
    return read();
  }

  Response read() {
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    http::read(stream_, buffer_, parser);
    return parser.release();
  }

  Response request(http::verb method, std::string target, std::string body = {},
                   std::string content_type = {}) {
    Request req{method, target, 11};
    if (!content_type.empty()) req.set(http::field::content_type, content_type);
    req.body() = std::move(body);
    return send(std::move(req));
  }

  Response post(std::string target, std::string body = {}) {
    return request(http::verb::post, std::move(target), std::move(body));
  }
  Response post_json(std::string target, std::string body) {
    return request(http::verb::post, std::move(target), std::move(body), "application/json");
  }
  Response get(std::string target) { return request(http::verb::get, std::move(target)); }

  boost::beast::tcp_stream& stream() { return stream_; }

 private:
  boost::asio::io_context ioc_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace metrics::testing
