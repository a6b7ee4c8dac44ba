// One HTTP/1.1 connection's read loop, over any Beast/Asio stream: a TCP
// stream, a TLS stream, or boost::beast::test::stream in the protocol tests
// and the HTTP fuzz target. Reads requests with the header and body limits,
// answers "Expect: 100-continue", hands each request to the Service, writes
// the answers in order (keep-alive and pipelining) and rejects what cannot
// be read with 400/413/431 before closing.
//
//   detail::SessionLimits limits{.max_header_bytes = 16384, .max_body_bytes = 1 << 20};
//   co_await detail::serve_connection(stream, service, limits, observer);
//
// The Observer is what the server knows of the connection beyond the stream:
//   bool stopping();                          // the server is shutting down
//   void idle(bool);                          // waiting for a new request (closable at stop)
//   void expires_after(std::chrono::milliseconds);  // deadline of the next I/O (may do nothing)
//   bool logging();                           // an access log is configured
//   std::string peer();                       // optional: the client's address
//   void log(std::string_view method, std::string_view target, unsigned status,
//            std::size_t bytes, std::chrono::microseconds took);
//
// The caller closes the stream afterwards. Not thread-safe: one coroutine
// per connection.
#pragma once

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/parser.hpp>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>

#include "metrics/core/text.hpp"
#include "metrics/server/service.hpp"

// GCC 12 reports Asio's coroutine frame allocator as mismatched new/delete
// when these templates are inlined into some callers (a false positive, GCC
// bug 109224).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace metrics::server::detail {

struct SessionLimits {
  std::size_t max_header_bytes = 16u << 10;
  std::size_t max_body_bytes = 8u << 20;
  std::chrono::milliseconds read_timeout{std::chrono::seconds{30}};
};

// The status line and header block of an answer. Beast's generic serializer
// costs more than the rest of a small answer's path; answers here are always
// a complete string body with Content-Length, so the head is written directly
// and sent with the body in one gathered write.
inline std::string serialize_head(const Response& res) {
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
boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> write_response(
    Stream& stream, const Response& res) {
  const std::string head = serialize_head(res);
  const std::array<boost::asio::const_buffer, 2> buffers{boost::asio::buffer(head),
                                                         boost::asio::buffer(res.body())};
  co_return co_await boost::asio::async_write(stream, buffers,
                                              boost::asio::as_tuple(boost::asio::use_awaitable));
}

// Method and target of a request line that Beast did not parse (the header
// block was over the limit before its end): "POST /updates/ HTTP/1.1\r\n...",
// the target cut where the bytes end.
// Leaves `req` alone when the bytes do not start with such a line.
inline void read_request_line(std::string_view bytes, Request& req) {
  const auto eol = bytes.find("\r\n");
  std::string_view line = bytes.substr(0, eol);
  const auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return;
  // No second space: the line was cut by the limit; the target is what came.
  const auto sp2 = std::min(line.find(' ', sp1 + 1), line.size());
  if (sp2 == sp1 + 1) return;
  const std::string_view method = line.substr(0, sp1);
  if (!std::all_of(method.begin(), method.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
    return;
  }
  req.method_string(method);
  req.target(line.substr(sp1 + 1, sp2 - sp1 - 1));
}

// Reads one request: parses what is already buffered (pipelined requests
// need no I/O at all), reads more only when the parser needs it, and
// answers "Expect: 100-continue" once the header is in. One read syscall
// per request in the common case, and an idle connection waits with a
// small buffer.
template <class Stream, class Observer>
boost::asio::awaitable<boost::system::error_code> read_request(
    Stream& stream, boost::beast::flat_buffer& buffer,
    boost::beast::http::request_parser<boost::beast::http::string_body>& parser, Observer& obs) {
  namespace asio = boost::asio;
  namespace http = boost::beast::http;
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
          auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(kContinue),
                                                      asio::as_tuple(asio::use_awaitable));
          if (wec) co_return wec;
        }
      }
      if (used > 0 && buffer.size() > 0) continue;
    }
    // Read as much as the buffer has room for, at least 512 bytes and at
    // most 64 KiB at a time.
    const std::size_t room =
        std::clamp<std::size_t>(buffer.capacity() - buffer.size(), 512, std::size_t{64} << 10);
    auto [ec, n] =
        co_await stream.async_read_some(buffer.prepare(room), asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
      if (!parser.got_some() && buffer.size() == 0) co_return http::error::end_of_stream;
      boost::system::error_code eof_ec;
      parser.put_eof(eof_ec);
      co_return eof_ec ? eof_ec : http::error::partial_message;
    }
    if (ec) co_return ec;
    buffer.commit(n);
    obs.idle(false);
  }
}

// Answers a request that could not be read in full, where an answer helps
// the client; transport errors just close the connection.
template <class Stream, class Observer>
boost::asio::awaitable<void> reject_read_error(
    Stream& stream, const Service& service, const SessionLimits& limits,
    const boost::beast::flat_buffer& buffer,
    boost::beast::http::request_parser<boost::beast::http::string_body>& parser,
    boost::system::error_code ec, Observer& obs) {
  namespace http = boost::beast::http;
  http::status status{};
  std::string message;
  if (ec == http::error::body_limit) {
    status = http::status::payload_too_large;
    message = "request body larger than " + std::to_string(limits.max_body_bytes) + " bytes";
  } else if (ec == http::error::header_limit) {
    status = http::status::request_header_fields_too_large;
    message = "request header larger than " + std::to_string(limits.max_header_bytes) + " bytes";
  } else if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
             ec != http::error::end_of_stream && ec != http::error::partial_message) {
    status = http::status::bad_request;
    message = "malformed HTTP request: " + ec.message();
  } else {
    co_return;
  }
  // What of the header was read: the request line and the fields parsed so
  // far (the parser takes the request line as soon as it is complete), or
  // the request line from the raw bytes when even that was too large.
  Request partial;
  partial.base() = parser.get().base();
  if (partial.target().empty()) {
    const auto data = buffer.data();
    read_request_line(std::string_view(static_cast<const char*>(data.data()), data.size()),
                      partial);
  }
  const auto started = std::chrono::steady_clock::now();
  Response res = service.reject(status, message, partial);
  res.keep_alive(false);
  obs.expires_after(std::chrono::seconds{5});
  co_await write_response(stream, res);
  if (obs.logging()) {
    const std::string_view method = partial.method_string();
    const std::string_view target = partial.target();
    obs.log(method.empty() ? std::string_view("-") : method,
            target.empty() ? std::string_view("-") : target, res.result_int(), res.body().size(),
            std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                  started));
  }
}

// The ClientWatch of a request on a socket: a wait for readability while
// the request is handled (nothing else reads the socket then). When the
// socket turns readable, a peek tells the client's end (0 bytes: it closed;
// an error: it reset) from the next pipelined request or TLS bytes (then it
// stops watching: the client is still there). Only handlers that call
// watch() (the pooled query endpoints) pay for the wait.
template <class Socket>
class SocketWatch final : public ClientWatch {
 public:
  explicit SocketWatch(Socket& socket) : socket_(socket) {}
  SocketWatch(const SocketWatch&) = delete;
  SocketWatch& operator=(const SocketWatch&) = delete;
  ~SocketWatch() override { finish(); }

  std::shared_ptr<const std::atomic<bool>> watch() override {
    if (!gone_) {
      gone_ = std::make_shared<std::atomic<bool>>(false);
      // The descriptor, not the socket: the handler may run after the
      // request is answered (it then sees operation_aborted and stops).
      socket_.async_wait(Socket::wait_read, [gone = gone_, fd = socket_.native_handle()](
                                                const boost::system::error_code& ec) {
        if (ec == boost::asio::error::operation_aborted) return;
        if (ec) {
          gone->store(true, std::memory_order_relaxed);
          return;
        }
        char byte = 0;
        const auto n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
          gone->store(true, std::memory_order_relaxed);
      });
    }
    return gone_;
  }

  // The answer is ready: stops the wait, if one was started.
  void finish() noexcept {
    if (gone_ && !finished_) {
      finished_ = true;
      boost::system::error_code ignored;
      socket_.cancel(ignored);
    }
  }

 private:
  Socket& socket_;
  std::shared_ptr<std::atomic<bool>> gone_;
  bool finished_ = false;
};

// Serves one connection until it closes, fails, times out or the server stops.
template <class Stream, class Observer>
boost::asio::awaitable<void> serve_connection(Stream& stream, Service& service,
                                              const SessionLimits& limits, Observer& obs) {
  namespace http = boost::beast::http;
  boost::beast::flat_buffer buffer;
  for (;;) {
    if (obs.stopping()) break;
    obs.idle(true);
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser.body_limit(limits.max_body_bytes);
    obs.expires_after(limits.read_timeout);
    auto ec = co_await read_request(stream, buffer, parser, obs);
    obs.idle(false);
    if (ec) {
      co_await reject_read_error(stream, service, limits, buffer, parser, ec, obs);
      break;
    }

    const auto started = std::chrono::steady_clock::now();
    Request req = parser.release();
    const bool keep_alive = req.keep_alive();
    const auto method = req.method();
    std::string target = obs.logging() ? std::string(req.target()) : std::string();

    std::string peer;
    if constexpr (requires { obs.peer(); }) peer = obs.peer();
    Response res;
    if constexpr (requires { boost::beast::get_lowest_layer(stream).socket().native_handle(); }) {
      SocketWatch watch(boost::beast::get_lowest_layer(stream).socket());
      res = co_await service.handle(std::move(req), peer, &watch);
      watch.finish();
    } else {
      res = co_await service.handle(std::move(req), peer);
    }
    const bool keep = keep_alive && !obs.stopping();
    res.keep_alive(keep);
    obs.expires_after(limits.read_timeout);
    auto [wec, written] = co_await write_response(stream, res);
    if (obs.logging()) {
      const auto name = http::to_string(method);
      obs.log(std::string_view(name.data(), name.size()), target, res.result_int(),
              res.body().size(),
              std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::steady_clock::now() - started));
    }
    if (wec || !keep) break;
    // An idle kept-alive connection holds no read buffer: with thousands of
    // agents reporting every few seconds, that is most of their memory.
    if (buffer.size() == 0) buffer.shrink_to_fit();
  }
}

}  // namespace metrics::server::detail

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
