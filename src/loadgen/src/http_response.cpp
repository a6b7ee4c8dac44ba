#include "metrics/loadgen/http_response.hpp"

#include <algorithm>
#include <charconv>

#include "metrics/core/text.hpp"

namespace metrics::loadgen {
namespace {

using core::iequals;
using core::trim;

// True when the comma-separated header value lists `token`.
bool has_token(std::string_view value, std::string_view token) noexcept {
  while (!value.empty()) {
    const auto comma = value.find(',');
    if (iequals(trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

HeadStatus parse_response_head(std::string_view data, ResponseHead& out) noexcept {
  const auto end = data.find("\r\n\r\n");
  if (end == std::string_view::npos) return HeadStatus::incomplete;
  std::string_view head = data.substr(0, end + 2);  // every line ends in CRLF

  const auto line_end = head.find("\r\n");
  std::string_view status_line = head.substr(0, line_end);
  head.remove_prefix(line_end + 2);
  // "HTTP/1.1 200 OK": version, a space, three digits, then a space or nothing.
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[8] != ' ' ||
      (status_line.size() > 12 && status_line[12] != ' '))
    return HeadStatus::malformed;
  const bool http10 = status_line[7] == '0';
  unsigned status = 0;
  const char* digits = status_line.data() + 9;
  if (auto [p, ec] = std::from_chars(digits, digits + 3, status);
      ec != std::errc{} || p != digits + 3 || status < 100)
    return HeadStatus::malformed;

  bool have_length = false;
  std::size_t length = 0;
  bool keep_alive = !http10;
  unsigned retry_after = 0;
  bool replayed = false;
  while (!head.empty()) {
    const auto eol = head.find("\r\n");
    const std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return HeadStatus::malformed;
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      std::size_t n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc{} || p != value.data() + value.size() || value.empty() ||
          (have_length && n != length))
        return HeadStatus::malformed;
      have_length = true;
      length = n;
    } else if (iequals(name, "transfer-encoding")) {
      // The server always frames with Content-Length; anything else is a
      // framing we do not follow, and must not silently misread.
      return HeadStatus::malformed;
    } else if (iequals(name, "connection")) {
      if (has_token(value, "close")) keep_alive = false;
      if (has_token(value, "keep-alive")) keep_alive = true;
    } else if (iequals(name, "retry-after")) {
      unsigned n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec == std::errc{} && p == value.data() + value.size()) retry_after = std::min(n, 3600u);
    } else if (iequals(name, "idempotent-replayed")) {
      replayed = iequals(value, "true");
    }
  }
  // 1xx, 204 and 304 carry no body; anything else without a length would
  // run until the connection closes, which a keep-alive client cannot frame.
  const bool bodiless = status < 200 || status == 204 || status == 304;
  if (!have_length && !bodiless) return HeadStatus::malformed;

  out.status = status;
  out.head_bytes = end + 4;
  out.content_length = bodiless ? 0 : length;
  out.keep_alive = keep_alive;
  out.retry_after_s = retry_after;
  out.replayed = replayed;
  return HeadStatus::complete;
}

}  // namespace metrics::loadgen
