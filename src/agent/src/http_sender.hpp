// Sends one batch to the server with libcurl: gzip'd JSON, HMAC-signed when
// a key is set, the answer's signature checked. One kept-alive easy handle
// per sender (per in-flight slot).
//
// Thread-compatible: one HttpSender is used by one thread at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/core/metric.hpp"

namespace metrics::agent::detail {

// "<base>/updates/" for "host:port" (http) or an http(s):// URL; nullopt with
// *error set when the address cannot be used.
[[nodiscard]] std::optional<std::string> updates_url(std::string_view address,
                                                     std::string* error = nullptr);

// The request body as sent: the JSON array, gzip'd.
[[nodiscard]] std::string encode_body(std::span<const core::Metric> batch);

enum class Outcome : std::uint8_t {
  ok,         // 2xx with a valid (or, without a key, any) signature
  retryable,  // network error, timeout, 5xx, 429, 401, bad answer signature ...
  rejected,   // 400 / 413 / 415: the batch itself is refused; resending cannot help
};

struct SendResult {
  Outcome outcome = Outcome::retryable;
  long status = 0;  // HTTP status, 0 when there was no answer
  std::optional<std::chrono::seconds> retry_after;
  std::string error;  // what went wrong, for the log
};

// The wait before retry number `retry` (0 for the first retry), or nullopt
// when the schedule is exhausted. A Retry-After from the server replaces the
// scheduled wait, capped at 60 s.
[[nodiscard]] std::optional<std::chrono::milliseconds> retry_delay(
    std::span<const std::chrono::milliseconds> schedule, std::size_t retry,
    std::optional<std::chrono::seconds> retry_after) noexcept;

// Parses a Retry-After value in seconds (HTTP dates are ignored).
[[nodiscard]] std::optional<std::chrono::seconds> parse_retry_after(
    std::string_view value) noexcept;

// Calls curl_global_init exactly once per process.
void ensure_curl_initialized() noexcept;

class HttpSender {
 public:
  // abort_at: steady-clock time (ns since epoch) after which a request in
  // progress is abandoned; read at every curl progress callback.
  HttpSender(std::string url, std::string key, std::chrono::milliseconds timeout,
             const std::atomic<std::int64_t>* abort_at, std::string ca_file = {});
  ~HttpSender();
  HttpSender(const HttpSender&) = delete;
  HttpSender& operator=(const HttpSender&) = delete;

  [[nodiscard]] SendResult post(std::string_view body);

 private:
  struct Handles;
  std::unique_ptr<Handles> handles_;
  std::string url_;
  std::string key_;
  std::string ca_file_;
  std::chrono::milliseconds timeout_;
  const std::atomic<std::int64_t>* abort_at_;
};

}  // namespace metrics::agent::detail
