#include "metrics/outbound/client.hpp"

#include <algorithm>

#include "metrics/core/signature.hpp"
#include "wire.hpp"

namespace metrics::outbound {

struct Client::Handle {
  std::unique_ptr<detail::Wire> plain;
  std::unique_ptr<detail::Wire> curl;
};

bool needs_curl(std::string_view url) noexcept {
  try {
    return !detail::plain_url_supported(url) || detail::http_proxy_configured();
  } catch (...) {
    return true;
  }
}

Client::Client(ClientOptions options)
    : handle_(std::make_unique<Handle>()), options_(std::move(options)) {}

Client::~Client() = default;

void Client::limit_timeout(std::chrono::milliseconds timeout) noexcept {
  options_.timeout = std::max(std::chrono::milliseconds{1}, std::min(options_.timeout, timeout));
}

Response Client::perform(const Request& request) noexcept {
  Response response;
  try {
    detail::Wire* wire = nullptr;
    if (needs_curl(request.url)) {
      if (!handle_->curl) handle_->curl = detail::make_curl_wire(&response.error);
      wire = handle_->curl.get();
    } else {
      if (!handle_->plain) handle_->plain = detail::make_plain_wire();
      wire = handle_->plain.get();
    }
    if (wire == nullptr) {
      response.transport = Transport::not_sent;
      return response;
    }
    std::vector<std::string> headers = request.headers;
    if (!request.sign_key.empty()) {
      headers.push_back(std::string(core::kSignatureHeader) + ": " +
                        core::hmac_sha256_hex(request.sign_key, request.body));
    }
    const detail::Exchange exchange{.url = request.url,
                                    .headers = &headers,
                                    .body = request.body,
                                    .timeout = options_.timeout,
                                    .abort_at = options_.abort_at,
                                    .max_answer_bytes = options_.max_answer_bytes,
                                    .ca_file = options_.ca_file};
    std::string signature;
    wire->exchange(exchange, response, signature);
    if (response.transport != Transport::answered) return response;
    if (response.status >= 200 && response.status < 300) {
      if (!request.sign_key.empty() &&
          !core::verify_signature(request.sign_key, response.body, signature)) {
        response.signature_ok = false;
        response.error = signature.empty() ? "answer is not signed" : "answer signature mismatch";
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
