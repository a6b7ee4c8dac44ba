// libcurl for https:// (and proxied http://), loaded with dlopen on first
// use: a process whose requests are all plain http:// never maps libcurl,
// its TLS library or its dependencies. The handful of functions used are
// looked up once; their types come from curl.h, so a mismatch is a compile
// error. The library is never unloaded.
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <dlfcn.h>
#include <openssl/crypto.h>

#include <mutex>

#include "metrics/core/signature.hpp"
#include "metrics/core/text.hpp"
#include "wire.hpp"

#ifndef METRICS_CURL_SONAME
#error "METRICS_CURL_SONAME (libcurl's soname, e.g. libcurl.so.4) must be defined"
#endif

namespace metrics::outbound {
namespace detail {
namespace {

struct CurlApi {
  decltype(&curl_global_init) global_init = nullptr;
  decltype(&curl_easy_init) easy_init = nullptr;
  decltype(&curl_easy_cleanup) easy_cleanup = nullptr;
  decltype(&curl_easy_reset) easy_reset = nullptr;
  decltype(&curl_easy_setopt) easy_setopt = nullptr;
  decltype(&curl_easy_perform) easy_perform = nullptr;
  decltype(&curl_easy_getinfo) easy_getinfo = nullptr;
  decltype(&curl_easy_strerror) easy_strerror = nullptr;
  decltype(&curl_slist_append) slist_append = nullptr;
  decltype(&curl_slist_free_all) slist_free_all = nullptr;
};

struct Loaded {
  CurlApi api;
  std::string error;  // empty when api is usable
};

template <typename F>
bool find(void* library, const char* name, F& out) {
  out = reinterpret_cast<F>(::dlsym(library, name));
  return out != nullptr;
}

const Loaded& loaded() {
  static Loaded result;
  static std::once_flag once;
  std::call_once(once, [] {
    void* library = ::dlopen(METRICS_CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
      const char* why = ::dlerror();
      result.error = std::string("cannot load " METRICS_CURL_SONAME ": ") +
                     (why != nullptr ? why : "unknown error");
      return;
    }
    CurlApi& a = result.api;
    if (!find(library, "curl_global_init", a.global_init) ||
        !find(library, "curl_easy_init", a.easy_init) ||
        !find(library, "curl_easy_cleanup", a.easy_cleanup) ||
        !find(library, "curl_easy_reset", a.easy_reset) ||
        !find(library, "curl_easy_setopt", a.easy_setopt) ||
        !find(library, "curl_easy_perform", a.easy_perform) ||
        !find(library, "curl_easy_getinfo", a.easy_getinfo) ||
        !find(library, "curl_easy_strerror", a.easy_strerror) ||
        !find(library, "curl_slist_append", a.slist_append) ||
        !find(library, "curl_slist_free_all", a.slist_free_all)) {
      result.error = METRICS_CURL_SONAME " lacks a function the client needs";
      return;
    }
    // OpenSSL (libcurl's TLS) would register an atexit cleanup when libcurl
    // initialises it; that cleanup runs before the destructors of libraries
    // (the preload agent's final report) and would leave them without TLS.
    decltype(&OPENSSL_init_crypto) init_crypto = nullptr;
    if (find(library, "OPENSSL_init_crypto", init_crypto)) {
      (void)init_crypto(OPENSSL_INIT_NO_ATEXIT, nullptr);
    }
    if (a.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      result.error = "curl_global_init failed";
    }
  });
  return result;
}

struct Collect {
  Response* response;
  std::string* signature;
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
      c->signature->clear();
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
      c->signature->assign(value);
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
  return steady_now_ns() > abort_at->load(std::memory_order_relaxed) ? 1 : 0;
}

class CurlWire final : public Wire {
 public:
  explicit CurlWire(const CurlApi& api) : api_(api) {}
  ~CurlWire() override {
    if (handle_ != nullptr) api_.easy_cleanup(handle_);
  }
  CurlWire(const CurlWire&) = delete;
  CurlWire& operator=(const CurlWire&) = delete;

  void exchange(const Exchange& exchange, Response& response,
                std::string& signature) noexcept override {
    curl_slist* headers = nullptr;
    try {
      run(exchange, response, signature, headers);
    } catch (const std::exception& e) {
      response.transport = Transport::not_sent;
      response.error = e.what();
    }
    api_.slist_free_all(headers);
  }

 private:
  void run(const Exchange& exchange, Response& response, std::string& signature,
           curl_slist*& headers) {
    if (handle_ == nullptr) {
      handle_ = api_.easy_init();
      if (handle_ == nullptr) {
        response.error = "curl_easy_init failed";
        return;
      }
    }
    CURL* h = handle_;
    // Reset per request: the handle keeps its connection cache across
    // curl_easy_reset, which is what keep-alive needs.
    api_.easy_reset(h);
    const auto add = [&](const char* line) {
      if (curl_slist* head = api_.slist_append(headers, line)) headers = head;
    };
    if (exchange.headers != nullptr) {
      for (const auto& line : *exchange.headers)
        add(line.c_str());
    }
    // No "Expect: 100-continue" round trip for bigger bodies.
    add("Expect:");
    const std::string url(exchange.url);
    const std::string ca_file(exchange.ca_file);
    Collect collect{&response, &signature, exchange.max_answer_bytes};
    const auto timeout_ms = static_cast<long>(exchange.timeout.count());
    const auto set = api_.easy_setopt;
    set(h, CURLOPT_URL, url.c_str());
    set(h, CURLOPT_POST, 1L);
    set(h, CURLOPT_POSTFIELDS, exchange.body.data());
    set(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(exchange.body.size()));
    set(h, CURLOPT_HTTPHEADER, headers);
    set(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    set(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    // Signals would hit the host's handlers; the threaded resolver needs none.
    set(h, CURLOPT_NOSIGNAL, 1L);
    set(h, CURLOPT_WRITEFUNCTION, &on_body);
    set(h, CURLOPT_WRITEDATA, &collect);
    set(h, CURLOPT_HEADERFUNCTION, &on_header);
    set(h, CURLOPT_HEADERDATA, &collect);
    set(h, CURLOPT_NOPROGRESS, 0L);
    set(h, CURLOPT_XFERINFOFUNCTION, &on_progress);
    set(h, CURLOPT_XFERINFODATA, const_cast<std::atomic<std::int64_t>*>(exchange.abort_at));
    set(h, CURLOPT_TCP_KEEPALIVE, 1L);
    set(h, CURLOPT_SSL_VERIFYPEER, 1L);
    set(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!ca_file.empty()) set(h, CURLOPT_CAINFO, ca_file.c_str());

    const CURLcode rc = api_.easy_perform(h);
    if (rc != CURLE_OK) {
      // Nothing of the request went out (no connection, failed handshake):
      // it cannot have been acted on. Otherwise the peer may have acted.
      long sent = 0;
      api_.easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent);
      response.transport = sent > 0 ? Transport::unknown : Transport::not_sent;
      response.error = api_.easy_strerror(rc);
      return;
    }
    response.transport = Transport::answered;
    api_.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
  }

  const CurlApi& api_;
  CURL* handle_ = nullptr;
};

}  // namespace

std::unique_ptr<Wire> make_curl_wire(std::string* error) {
  const Loaded& l = loaded();
  if (!l.error.empty()) {
    if (error != nullptr) *error = l.error;
    return nullptr;
  }
  return std::make_unique<CurlWire>(l.api);
}

}  // namespace detail

void ensure_global_init() noexcept {
  try {
    (void)detail::loaded();
  } catch (...) {
    // Reported by the first request that needs libcurl.
  }
}

}  // namespace metrics::outbound
