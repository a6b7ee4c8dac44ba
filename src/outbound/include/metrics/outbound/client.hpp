// The one outbound HTTP client of the project: everything that pushes (the
// agent's reports today; alert webhooks, Alertmanager and remote write later)
// sends through it. http:// requests go through a built-in HTTP/1.1 client
// (libc only); https:// requests, and http:// ones when a proxy is set in the
// environment (http_proxy, all_proxy), go through libcurl, which is loaded
// with dlopen when the first such request is made: a process that only
// speaks plain HTTP never maps libcurl or its TLS library. One Client keeps
// one kept-alive connection per transport; https:// is always verified (peer
// and host name), optionally against a CA file instead of the system store;
// every request has a timeout and can be abandoned from another thread
// through abort_at.
//
//   metrics::outbound::Client client({.timeout = std::chrono::seconds{5}});
//   metrics::outbound::Request request{.url = "http://localhost:8080/updates/",
//                                      .headers = {"Content-Type: application/json"},
//                                      .body = body,
//                                      .sign_key = key};
//   const metrics::outbound::Response answer = client.perform(request);
//   switch (metrics::outbound::classify(answer).verdict) { ... }
//
// What to do with an answer (classify) and when to try again (retry_delay,
// send_with_retry) are in retry.hpp.
//
// Thread-safety: a Client is thread-compatible (one thread at a time; give
// each sending thread its own Client). ensure_global_init() is thread-safe
// and loads libcurl and runs curl_global_init once per process; the first
// request that needs libcurl calls it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace metrics::outbound {

// How a request ended below HTTP.
enum class Transport : std::uint8_t {
  answered,  // a complete HTTP answer arrived (any status)
  not_sent,  // resolving or connecting failed: the request never left
  unknown,   // the request may have been sent but no complete answer came
             // (timeout, reset, abort): the peer may or may not have acted on it
};

struct Request {
  std::string url;
  // Extra header lines, "Name: value".
  std::vector<std::string> headers;
  // POSTed as is (possibly empty).
  std::string_view body;
  // Non-empty: the body is signed (HashSHA256: HMAC-SHA256 hex of the body as
  // sent) and a 2xx answer must carry a valid signature of its body.
  std::string_view sign_key;
};

struct Response {
  Transport transport = Transport::not_sent;
  long status = 0;  // HTTP status when answered
  std::string body;
  // The raw Retry-After header, empty when absent.
  std::string retry_after;
  // False when a signature was required and the answer's is missing or wrong.
  bool signature_ok = true;
  // What went wrong, for a log line; empty on a verified 2xx.
  std::string error;
};

struct ClientOptions {
  // Bound for one request, connecting included.
  std::chrono::milliseconds timeout{5000};
  // PEM file of the CA certificates to trust for https://; empty: the system store.
  std::string ca_file;
  // When set: steady-clock time (ns since its epoch) after which a request in
  // progress is abandoned; read at every progress callback, may be moved
  // earlier from another thread.
  const std::atomic<std::int64_t>* abort_at = nullptr;
  // Larger answers fail the request (a broken peer must not grow the process).
  std::size_t max_answer_bytes = 4 << 20;
};

// Loads libcurl (dlopen) and calls curl_global_init exactly once per
// process; a failure to load shows in the answer of the first request that
// needs libcurl. Call it early (from the thread that starts the program's
// senders) when needs_curl() says the URLs will need it.
void ensure_global_init() noexcept;

// True when a request to `url` goes through libcurl (https://, or a proxy in
// the environment, or an http:// URL the built-in client does not take).
[[nodiscard]] bool needs_curl(std::string_view url) noexcept;

// One request at a time over a kept-alive connection.
class Transporter {
 public:
  virtual ~Transporter() = default;
  // Never throws; failures are described in the Response.
  [[nodiscard]] virtual Response perform(const Request& request) noexcept = 0;
};

class Client final : public Transporter {
 public:
  explicit Client(ClientOptions options);
  ~Client() override;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  [[nodiscard]] Response perform(const Request& request) noexcept override;

  // Narrows the timeout of later requests (never widens it beyond the options').
  void limit_timeout(std::chrono::milliseconds timeout) noexcept;

 private:
  struct Handle;
  std::unique_ptr<Handle> handle_;
  ClientOptions options_;
};

// Percent-encodes everything but RFC 3986's unreserved characters, for a path
// segment.
[[nodiscard]] std::string percent_encode(std::string_view text);

}  // namespace metrics::outbound
