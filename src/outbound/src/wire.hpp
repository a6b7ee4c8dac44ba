// The two ways a Client's requests travel (internal to metrics::outbound):
// the built-in HTTP/1.1 client for http:// (no library beyond libc, so that
// a host that runs the agent maps nothing else for it), and libcurl, loaded
// with dlopen on first use, for https:// and whenever a proxy is configured
// for http:// (libcurl's own rules decide then, as before).
//
// Both fill the same Response fields the same way; Client signs the request
// before and checks the answer's signature after, whichever carried it.
//
// Thread-compatible: one Wire per Client, used by one thread at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/outbound/client.hpp"

namespace metrics::outbound::detail {

struct Exchange {
  std::string_view url;
  // "Name: value" lines; "Name:" (no value) removes a default header.
  const std::vector<std::string>* headers = nullptr;
  std::string_view body;
  std::chrono::milliseconds timeout{5000};
  const std::atomic<std::int64_t>* abort_at = nullptr;
  std::size_t max_answer_bytes = 4 << 20;
  std::string_view ca_file;
};

class Wire {
 public:
  virtual ~Wire() = default;
  // Sets transport, status, body, retry_after and (on failure below HTTP)
  // error; *signature gets the answer's HashSHA256 value. Never throws.
  virtual void exchange(const Exchange& exchange, Response& response,
                        std::string& signature) noexcept = 0;
};

// The built-in client: one kept-alive connection, http:// only.
[[nodiscard]] std::unique_ptr<Wire> make_plain_wire();
// True for the http:// URLs the built-in client handles (not those with
// user info or anything it does not parse: they go to libcurl).
[[nodiscard]] bool plain_url_supported(std::string_view url);

// libcurl through dlopen (loaded and initialised once per process); null
// with *error set when libcurl cannot be loaded.
[[nodiscard]] std::unique_ptr<Wire> make_curl_wire(std::string* error);

// True when libcurl would send an http:// request through a proxy
// (http_proxy, all_proxy or ALL_PROXY set and not empty): such requests go
// through libcurl, which applies no_proxy and the proxy's protocol.
[[nodiscard]] bool http_proxy_configured() noexcept;

// Steady-clock nanoseconds now (the unit of ClientOptions::abort_at).
[[nodiscard]] std::int64_t steady_now_ns() noexcept;

}  // namespace metrics::outbound::detail
