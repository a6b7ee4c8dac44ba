#include "metrics/server/server.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <condition_variable>
#include <list>
#include <mutex>
#include <optional>
#include <thread>

#include "access_log.hpp"
#include "metrics/core/errors.hpp"
#include "metrics/core/text.hpp"

namespace metrics::server {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

tcp::endpoint resolve_listen_address(const std::string& address) {
  auto colon = address.rfind(':');
  std::string host = address.substr(0, colon);
  std::string port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) {
    return {tcp::v4(), static_cast<unsigned short>(std::stoul(port))};
  }
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  boost::system::error_code ec;
  auto results = resolver.resolve(host, port, tcp::resolver::passive, ec);
  if (ec || results.empty()) {
    throw core::Error("cannot resolve listen address " + address + ": " + ec.message());
  }
  // Like Go's net.Listen, prefer IPv4 for a name such as "localhost".
  for (const auto& r : results) {
    if (r.endpoint().address().is_v4()) return r.endpoint();
  }
  return results.begin()->endpoint();
}

// The status line and header block of an answer. Beast's generic serializer
// costs more than the rest of a small answer's path; answers here are always
// a complete string body with Content-Length, so the head is written directly
// and sent with the body in one gathered write.
std::string serialize_head(const Response& res) {
  std::string head;
  head.reserve(192);
  head += res.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  head += std::to_string(res.result_int());
  head += ' ';
  head += res.reason();
  head += "\r\n";
  for (const auto& field : res) {
    head += field.name_string();
    head += ": ";
    head += field.value();
    head += "\r\n";
  }
  head += "\r\n";
  return head;
}

template <class Stream>
asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> write_response(
    Stream& stream, const Response& res) {
  const std::string head = serialize_head(res);
  const std::array<asio::const_buffer, 2> buffers{asio::buffer(head), asio::buffer(res.body())};
  co_return co_await asio::async_write(stream, buffers, use_tuple);
}

// The TLS context from the configured certificate chain and key, or nothing
// when the server speaks plain HTTP.
std::unique_ptr<asio::ssl::context> make_tls_context(const ServerConfig& config) {
  if (config.tls_cert.empty()) return nullptr;
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(config.tls_cert, ec);
  if (ec) throw core::Error("TLS certificate " + config.tls_cert + ": " + ec.message());
  ctx->use_private_key_file(config.tls_key, asio::ssl::context::pem, ec);
  if (ec) throw core::Error("TLS key " + config.tls_key + ": " + ec.message());
  return ctx;
}

}  // namespace

struct Server::Impl {
  struct Worker {
    struct Connection {
      beast::tcp_stream* stream = nullptr;
      bool idle = true;
    };
    // Connections of this worker; touched only on its thread. Declared
    // before the io_context so that coroutine frames destroyed with it can
    // still unregister themselves.
    std::list<Connection> connections;
    asio::io_context ioc{1};
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard{
        ioc.get_executor()};
    // Access-log lines of this thread's requests, handed over in chunks.
    std::optional<detail::AccessLogBuffer> log;
    asio::steady_timer log_timer{ioc};
  };

  Impl(const ServerConfig& cfg, storage::Repository& repo)
      : config(cfg),
        service(repo, ServiceOptions{.key = cfg.key,
                                     .max_body_bytes = cfg.max_body_bytes,
                                     .max_batch_items = cfg.max_batch_items,
                                     .gzip_level = 1}),
        tls(make_tls_context(cfg)) {
    unsigned n = config.threads != 0 ? config.threads : std::thread::hardware_concurrency();
    if (n == 0) n = 1;
    if (config.access_log && spdlog::should_log(spdlog::level::info)) {
      access_log = std::make_unique<detail::AccessLog>(detail::stderr_log_writer());
    }
    for (unsigned i = 0; i < n; ++i) {
      workers.push_back(std::make_unique<Worker>());
      if (access_log) workers.back()->log.emplace(access_log.get());
    }
    acceptor.emplace(workers[0]->ioc);
    auto endpoint = resolve_listen_address(config.address);
    boost::system::error_code ec;
    acceptor->open(endpoint.protocol(), ec);
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor->bind(endpoint, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw core::Error("cannot listen on " + config.address + ": " + ec.message());
    port = acceptor->local_endpoint().port();
  }

  asio::awaitable<void> accept_loop() {
    std::size_t next = 0;
    while (!stopping.load()) {
      Worker& worker = *workers[next++ % workers.size()];
      auto [ec, socket] = co_await acceptor->async_accept(worker.ioc, use_tuple);
      if (ec) {
        if (stopping.load() || ec == asio::error::operation_aborted) co_return;
        // Out of file descriptors and the like: back off instead of spinning.
        spdlog::warn("accept failed: {}", ec.message());
        asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds{50});
        co_await pause.async_wait(use_tuple);
        continue;
      }
      if (open_connections.load() >= config.max_connections) {
        spdlog::warn("connection limit {} reached; refusing a connection", config.max_connections);
        continue;  // the socket closes as it goes out of scope
      }
      open_connections.fetch_add(1);
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      if (tls) {
        asio::co_spawn(worker.ioc, tls_session(worker, std::move(socket)), asio::detached);
      } else {
        asio::co_spawn(worker.ioc, session(worker, beast::tcp_stream(std::move(socket))),
                       asio::detached);
      }
    }
  }

  asio::awaitable<void> tls_session(Worker& worker, tcp::socket socket) {
    beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *tls);
    beast::get_lowest_layer(stream).expires_after(config.read_timeout);
    auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, use_tuple);
    if (ec) {
      spdlog::debug("TLS handshake failed: {}", ec.message());
      open_connections.fetch_sub(1);
      co_return;
    }
    co_await session(worker, std::move(stream));
  }

  // Serves one connection, plain or TLS, until it closes, fails, times out
  // or the server stops.
  template <class Stream>
  asio::awaitable<void> session(Worker& worker, Stream stream) {
    auto& lowest = beast::get_lowest_layer(stream);
    worker.connections.push_back({&lowest, true});
    auto self = std::prev(worker.connections.end());
    struct Cleanup {
      Impl* impl;
      Worker* w;
      std::list<Worker::Connection>::iterator it;
      ~Cleanup() {
        w->connections.erase(it);
        impl->open_connections.fetch_sub(1);
      }
    } cleanup{this, &worker, self};

    beast::flat_buffer buffer;
    for (;;) {
      if (stopping.load()) break;
      self->idle = true;
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(config.max_header_bytes));
      parser.body_limit(config.max_body_bytes);
      lowest.expires_after(config.read_timeout);
      auto ec = co_await read_request(stream, buffer, parser, *self);
      self->idle = false;
      if (ec) {
        co_await reject_read_error(worker, stream, parser, ec);
        break;
      }

      const auto started = std::chrono::steady_clock::now();
      Request req = parser.release();
      const bool keep_alive = req.keep_alive();
      const auto method = req.method();
      std::string target = worker.log ? std::string(req.target()) : std::string();

      Response res = co_await service.handle(std::move(req));
      const bool keep = keep_alive && !stopping.load();
      res.keep_alive(keep);
      lowest.expires_after(config.read_timeout);
      auto [wec, written] = co_await write_response(stream, res);
      if (worker.log) {
        worker.log->line(http::to_string(method), target, res.result_int(), res.body().size(),
                         std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::steady_clock::now() - started));
      }
      if (wec || !keep) break;
      // An idle kept-alive connection holds no read buffer: with thousands of
      // agents reporting every few seconds, that is most of their memory.
      if (buffer.size() == 0) buffer.shrink_to_fit();
    }
    co_await close_stream(stream);
  }

  static asio::awaitable<void> close_stream(beast::tcp_stream& stream) {
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream.close();
    co_return;
  }

  static asio::awaitable<void> close_stream(beast::ssl_stream<beast::tcp_stream>& stream) {
    // A TLS close_notify, bounded in time: the peer may be gone already.
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds{2});
    co_await stream.async_shutdown(use_tuple);
    beast::get_lowest_layer(stream).close();
  }

  // Reads one request: parses what is already buffered (pipelined requests
  // need no I/O at all), reads more only when the parser needs it, and
  // answers "Expect: 100-continue" once the header is in. One read syscall
  // per request in the common case, and an idle connection waits with a
  // small buffer.
  template <class Stream>
  asio::awaitable<boost::system::error_code> read_request(
      Stream& stream, beast::flat_buffer& buffer, http::request_parser<http::string_body>& parser,
      Worker::Connection& self) {
    bool header_seen = false;
    for (;;) {
      if (buffer.size() > 0) {
        boost::system::error_code ec;
        const std::size_t used = parser.put(buffer.data(), ec);
        buffer.consume(used);
        if (ec && ec != http::error::need_more) co_return ec;
        if (parser.is_done()) co_return boost::system::error_code{};
        if (parser.is_header_done() && !header_seen) {
          header_seen = true;
          if (core::iequals(parser.get()[http::field::expect], "100-continue")) {
            static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
            auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(kContinue), use_tuple);
            if (wec) co_return wec;
          }
        }
        if (used > 0 && buffer.size() > 0) continue;
      }
      // Read as much as the buffer has room for, at least 512 bytes and at
      // most 64 KiB at a time.
      const std::size_t room =
          std::clamp<std::size_t>(buffer.capacity() - buffer.size(), 512, std::size_t{64} << 10);
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(room), use_tuple);
      if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
        if (!parser.got_some() && buffer.size() == 0) co_return http::error::end_of_stream;
        boost::system::error_code eof_ec;
        parser.put_eof(eof_ec);
        co_return eof_ec ? eof_ec : http::error::partial_message;
      }
      if (ec) co_return ec;
      buffer.commit(n);
      self.idle = false;
    }
  }

  // Answers a request that could not be read in full, where an answer helps
  // the client; transport errors just close the connection.
  template <class Stream>
  asio::awaitable<void> reject_read_error(Worker& worker, Stream& stream,
                                          http::request_parser<http::string_body>& parser,
                                          boost::system::error_code ec) {
    http::status status{};
    std::string message;
    if (ec == http::error::body_limit) {
      status = http::status::payload_too_large;
      message = "request body larger than " + std::to_string(config.max_body_bytes) + " bytes";
    } else if (ec == http::error::header_limit) {
      status = http::status::request_header_fields_too_large;
      message = "request header larger than " + std::to_string(config.max_header_bytes) + " bytes";
    } else if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
               ec != http::error::end_of_stream && ec != http::error::partial_message) {
      status = http::status::bad_request;
      message = "malformed HTTP request: " + ec.message();
    } else {
      co_return;
    }
    Request partial;
    if (parser.is_header_done()) {
      partial.base() = parser.get().base();
    }
    Response res = service.reject(status, message, partial);
    res.keep_alive(false);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds{5});
    co_await write_response(stream, res);
    if (worker.log) {
      worker.log->line(partial.method_string(), partial.target(), res.result_int(),
                       res.body().size(), std::chrono::microseconds{0});
    }
  }

  void stop() {
    if (stopping.exchange(true)) return;
    asio::post(workers[0]->ioc, [this] {
      boost::system::error_code ignored;
      acceptor->close(ignored);
    });
    for (auto& w : workers) {
      asio::post(w->ioc, [worker = w.get()] {
        for (auto& c : worker->connections) {
          if (c.idle) c.stream->cancel();
        }
        worker->log_timer.cancel();
        worker->guard.reset();
      });
    }
    {
      std::lock_guard lock(mutex);
      stop_requested = true;
    }
    cv.notify_all();
  }

  // Hands each thread's access-log lines over at least once a second.
  asio::awaitable<void> log_flusher(Worker& worker) {
    while (!stopping.load()) {
      worker.log_timer.expires_after(std::chrono::seconds{1});
      co_await worker.log_timer.async_wait(use_tuple);
      worker.log->flush();
    }
  }

  void run() {
    asio::co_spawn(workers[0]->ioc, accept_loop(), asio::detached);
    for (auto& w : workers) {
      if (w->log) asio::co_spawn(w->ioc, log_flusher(*w), asio::detached);
    }
    std::size_t finished = 0;
    std::vector<std::thread> threads;
    for (auto& w : workers) {
      threads.emplace_back([this, worker = w.get(), &finished] {
        worker->ioc.run();
        std::lock_guard lock(mutex);
        ++finished;
        cv.notify_all();
      });
    }
    {
      std::unique_lock lock(mutex);
      cv.wait(lock, [&] { return stop_requested; });
      if (!cv.wait_for(lock, config.shutdown_timeout, [&] { return finished == workers.size(); })) {
        spdlog::warn("shutdown timeout: abandoning {} connection(s)", open_connections.load());
        for (auto& w : workers)
          w->ioc.stop();
      }
    }
    for (auto& t : threads)
      t.join();
    for (auto& w : workers) {
      if (w->log) w->log->flush();
    }
  }

  ServerConfig config;
  Service service;
  std::unique_ptr<asio::ssl::context> tls;
  // Outlives the workers, whose buffers hand lines to it.
  std::unique_ptr<detail::AccessLog> access_log;
  std::vector<std::unique_ptr<Worker>> workers;
  std::optional<tcp::acceptor> acceptor;
  std::uint16_t port = 0;
  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> open_connections{0};
  std::mutex mutex;
  std::condition_variable cv;
  bool stop_requested = false;
};

Server::Server(const ServerConfig& config, storage::Repository& repo)
    : impl_(std::make_unique<Impl>(config, repo)) {}

Server::~Server() = default;

std::uint16_t Server::port() const noexcept {
  return impl_->port;
}

void Server::run() {
  impl_->run();
}

void Server::stop() noexcept {
  impl_->stop();
}

std::size_t Server::connections() const noexcept {
  return impl_->open_connections.load();
}

}  // namespace metrics::server
