#include "metrics/outbound/client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <mutex>

#include "metrics/core/signature.hpp"
#include "metrics/core/text.hpp"

namespace metrics::outbound {
namespace {

struct CurlDeleter {
  void operator()(CURL* h) const noexcept { curl_easy_cleanup(h); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

struct Collect {
  Response* response;
  std::string signature;
  std::size_t max_body;
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) noexcept {
  auto* c = static_cast<Collect*>(user);
  const std::size_t n = size * count;
  if (c->response->body.size() + n > c->max_body) return 0;
  try {
    c->response->body.append(data, n);
  } catch (...) {
    return 0;  // tells curl to fail the transfer
  }
  return n;
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) noexcept {
  auto* c = static_cast<Collect*>(user);
  const std::size_t n = size * count;
  const std::string_view line(data, n);
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    // A new status line (after a 100 Continue) starts a new answer.
    if (line.starts_with("HTTP/")) {
      c->signature.clear();
      c->response->retry_after.clear();
    }
    return n;
  }
  auto strip = [](std::string_view s) {
    s = core::trim(s);
    while (!s.empty() && (s.back() == '\r' || s.back() == '\n'))
      s.remove_suffix(1);
    return core::trim(s);
  };
  const std::string_view name = strip(line.substr(0, colon));
  const std::string_view value = strip(line.substr(colon + 1));
  try {
    if (core::iequals(name, core::kSignatureHeader)) {
      c->signature.assign(value);
    } else if (core::iequals(name, "Retry-After")) {
      c->response->retry_after.assign(value);
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

struct Client::Handle {
  CurlPtr curl;
};

void ensure_global_init() noexcept {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

Client::Client(ClientOptions options)
    : handle_(std::make_unique<Handle>()), options_(std::move(options)) {
  ensure_global_init();
}

Client::~Client() = default;

void Client::limit_timeout(std::chrono::milliseconds timeout) noexcept {
  options_.timeout = std::max(std::chrono::milliseconds{1}, std::min(options_.timeout, timeout));
}

Response Client::perform(const Request& request) noexcept {
  Response response;
  try {
    if (!handle_->curl) {
      handle_->curl.reset(curl_easy_init());
      if (!handle_->curl) {
        response.error = "curl_easy_init failed";
        return response;
      }
    }
    CURL* h = handle_->curl.get();
    // Reset per request: the handle keeps its connection cache across
    // curl_easy_reset, which is what keep-alive needs.
    curl_easy_reset(h);
    SlistPtr headers;
    const auto add = [&](const char* line) {
      // Appending returns the head: the same one once the list exists.
      if (curl_slist* head = curl_slist_append(headers.get(), line)) {
        (void)headers.release();
        headers.reset(head);
      }
    };
    for (const auto& line : request.headers)
      add(line.c_str());
    // No "Expect: 100-continue" round trip for bigger bodies.
    add("Expect:");
    std::string signature;
    if (!request.sign_key.empty()) {
      signature = std::string(core::kSignatureHeader) + ": " +
                  core::hmac_sha256_hex(request.sign_key, request.body);
      add(signature.c_str());
    }

    Collect collect{&response, {}, options_.max_answer_bytes};
    const auto timeout_ms = static_cast<long>(options_.timeout.count());
    curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    // Signals would hit the host's handlers; the threaded resolver needs none.
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &collect);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &collect);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA,
                     const_cast<std::atomic<std::int64_t>*>(options_.abort_at));
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!options_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, options_.ca_file.c_str());

    const CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
      // Nothing of the request went out (no connection, failed handshake):
      // it cannot have been acted on. Otherwise the peer may have acted.
      long sent = 0;
      curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent);
      response.transport = sent > 0 ? Transport::unknown : Transport::not_sent;
      response.error = curl_easy_strerror(rc);
      return response;
    }
    response.transport = Transport::answered;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
    if (response.status >= 200 && response.status < 300) {
      if (!request.sign_key.empty() &&
          !core::verify_signature(request.sign_key, response.body, collect.signature)) {
        response.signature_ok = false;
        response.error =
            collect.signature.empty() ? "answer is not signed" : "answer signature mismatch";
      }
      return response;
    }
    response.error = "server answered " + std::to_string(response.status);
    return response;
  } catch (const std::exception& e) {
    response.transport = Transport::not_sent;
    response.error = e.what();
    return response;
  } catch (...) {
    response.transport = Transport::not_sent;
    response.error = "unexpected error";
    return response;
  }
}

std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

}  // namespace metrics::outbound
