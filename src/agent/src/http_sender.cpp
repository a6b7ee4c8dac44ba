#include "http_sender.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <mutex>

#include "metrics/core/gzip.hpp"
#include "metrics/core/json_codec.hpp"
#include "metrics/core/signature.hpp"

namespace metrics::agent::detail {
namespace {

struct CurlDeleter {
  void operator()(CURL* h) const noexcept { curl_easy_cleanup(h); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

struct Answer {
  std::string body;
  std::string signature;
  std::string retry_after;
  // Answers are small JSON arrays; a bound keeps a broken server from
  // growing the host process.
  static constexpr std::size_t kMaxBody = 4 << 20;
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) noexcept {
  auto* answer = static_cast<Answer*>(user);
  const std::size_t n = size * count;
  if (answer->body.size() + n > Answer::kMaxBody) return 0;
  try {
    answer->body.append(data, n);
  } catch (...) {
    return 0;  // tells curl to fail the transfer
  }
  return n;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  return s;
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) noexcept {
  auto* answer = static_cast<Answer*>(user);
  const std::size_t n = size * count;
  const std::string_view line(data, n);
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    // A new status line (after a 100 Continue or a redirect) starts a new answer.
    if (line.starts_with("HTTP/")) {
      answer->signature.clear();
      answer->retry_after.clear();
    }
    return n;
  }
  const std::string_view name = trim(line.substr(0, colon));
  const std::string_view value = trim(line.substr(colon + 1));
  try {
    if (iequals(name, core::kSignatureHeader)) {
      answer->signature.assign(value);
    } else if (iequals(name, "Retry-After")) {
      answer->retry_after.assign(value);
    }
  } catch (...) {
    return 0;
  }
  return n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) noexcept {
  const auto* abort_at = static_cast<const std::atomic<std::int64_t>*>(user);
  if (abort_at == nullptr) return 0;
  const auto now = std::chrono::steady_clock::now().time_since_epoch();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(now).count() >
                 abort_at->load(std::memory_order_relaxed)
             ? 1
             : 0;
}

}  // namespace

struct HttpSender::Handles {
  CurlPtr curl;
  SlistPtr headers;
  std::string signature_header;
};

std::optional<std::string> updates_url(std::string_view address, std::string* error) {
  const auto fail = [&](std::string message) -> std::optional<std::string> {
    if (error != nullptr) *error = std::move(message);
    return std::nullopt;
  };
  address = trim(address);
  if (address.empty()) return fail("is empty");
  std::string scheme = "http://";
  std::string_view authority = address;
  std::string_view path;
  if (const std::size_t sep = address.find("://"); sep != std::string_view::npos) {
    const std::string_view given = address.substr(0, sep);
    if (given != "http" && given != "https") {
      return fail("must be host:port or an http:// or https:// URL");
    }
    scheme = std::string(given) + "://";
    authority = address.substr(sep + 3);
    if (const std::size_t slash = authority.find('/'); slash != std::string_view::npos) {
      path = authority.substr(slash);
      authority = authority.substr(0, slash);
    }
  } else if (address.find('/') != std::string_view::npos) {
    return fail("must be host:port or an http:// or https:// URL");
  }
  const bool is_url = address.find("://") != std::string_view::npos;
  std::string_view host = authority;
  std::string_view port;
  if (authority.starts_with('[')) {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail("has an unclosed '['");
    host = authority.substr(0, close + 1);
    const std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return fail("has junk after ']'");
      port = rest.substr(1);
      if (port.empty()) return fail("has an empty port");
    }
  } else if (const std::size_t colon = authority.find(':'); colon != std::string_view::npos) {
    if (authority.rfind(':') != colon) return fail("has several ':' (write IPv6 as [addr]:port)");
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) return fail("has an empty port");
  }
  if (!is_url && port.empty()) return fail("must be host:port");
  if (!port.empty()) {
    unsigned value = 0;
    const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc{} || ptr != port.data() + port.size() || value == 0 || value > 65535) {
      return fail("has an invalid port '" + std::string(port) + "'");
    }
  }
  if (host.empty() && is_url) return fail("has no host");
  for (const char c : host) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == '@' || c == '?' || c == '#') {
      return fail("has an invalid host");
    }
  }
  // Like Go's dialer, ":8080" means this machine.
  std::string url = scheme + (host.empty() ? std::string("localhost") : std::string(host));
  if (!port.empty()) url += ":" + std::string(port);
  while (!path.empty() && path.back() == '/')
    path.remove_suffix(1);
  url += path;
  return url + "/updates/";
}

std::string encode_body(std::span<const core::Metric> batch) {
  // Level 1: agent batches are small and repetitive; the fastest level
  // already compresses them ~5x and keeps the sample cost low.
  return core::gzip_compress(core::encode_batch(batch), 1);
}

std::optional<std::chrono::milliseconds> retry_delay(
    std::span<const std::chrono::milliseconds> schedule, std::size_t retry,
    std::optional<std::chrono::seconds> retry_after) noexcept {
  if (retry >= schedule.size()) return std::nullopt;
  if (retry_after) {
    return std::chrono::milliseconds{std::min(*retry_after, std::chrono::seconds{60})};
  }
  return schedule[retry];
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value) noexcept {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  std::int64_t seconds = 0;
  const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec != std::errc{} || ptr != value.data() + value.size() || seconds < 0) return std::nullopt;
  return std::chrono::seconds{std::min<std::int64_t>(seconds, 3600)};
}

void ensure_curl_initialized() noexcept {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

HttpSender::HttpSender(std::string url, std::string key, std::chrono::milliseconds timeout,
                       const std::atomic<std::int64_t>* abort_at, std::string ca_file)
    : handles_(std::make_unique<Handles>()),
      url_(std::move(url)),
      key_(std::move(key)),
      ca_file_(std::move(ca_file)),
      timeout_(timeout),
      abort_at_(abort_at) {
  ensure_curl_initialized();
}

HttpSender::~HttpSender() = default;

SendResult HttpSender::post(std::string_view body) {
  SendResult result;
  if (!handles_->curl) {
    handles_->curl.reset(curl_easy_init());
    if (!handles_->curl) {
      result.error = "curl_easy_init failed";
      return result;
    }
  }
  CURL* h = handles_->curl.get();
  // Reset per request: a kept handle keeps its connection cache across
  // curl_easy_reset, which is what keep-alive needs.
  curl_easy_reset(h);
  curl_slist* raw = nullptr;
  const auto add = [&](const char* line) {
    if (curl_slist* next = curl_slist_append(raw, line)) raw = next;
  };
  add("Content-Type: application/json");
  add("Content-Encoding: gzip");
  // Set by hand (not CURLOPT_ACCEPT_ENCODING) so that curl leaves the answer
  // as it came: its signature covers the bytes on the wire.
  add("Accept-Encoding: gzip");
  // No "Expect: 100-continue" round trip for bigger batches.
  add("Expect:");
  std::string signature;
  if (!key_.empty()) {
    signature = std::string(core::kSignatureHeader) + ": " + core::hmac_sha256_hex(key_, body);
    add(signature.c_str());
  }
  handles_->headers.reset(raw);

  Answer answer;
  const auto timeout_ms = static_cast<long>(timeout_.count());
  curl_easy_setopt(h, CURLOPT_URL, url_.c_str());
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, handles_->headers.get());
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  // Signals would hit the host's handlers; the threaded resolver needs none.
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &answer);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, const_cast<std::atomic<std::int64_t>*>(abort_at_));
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  // https:// is always verified (peer and host name); a CA file replaces the
  // system store for deployments with their own CA.
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!ca_file_.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, ca_file_.c_str());

  const CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    result.error = curl_easy_strerror(rc);
    return result;
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &result.status);
  if (result.status >= 200 && result.status < 300) {
    if (!key_.empty() && !core::verify_signature(key_, answer.body, answer.signature)) {
      result.error =
          answer.signature.empty() ? "answer is not signed" : "answer signature mismatch";
      return result;
    }
    result.outcome = Outcome::ok;
    return result;
  }
  result.error = "server answered " + std::to_string(result.status);
  if (result.status == 400 || result.status == 413 || result.status == 415) {
    result.outcome = Outcome::rejected;
    return result;
  }
  if (result.status == 429 || result.status == 503) {
    result.retry_after = parse_retry_after(answer.retry_after);
  }
  return result;
}

}  // namespace metrics::agent::detail
