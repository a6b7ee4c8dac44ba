#include "metrics/server/content.hpp"

#include <cctype>
#include <charconv>

#include "metrics/core/text.hpp"

namespace metrics::server {
namespace {

using core::iequals;
using core::trim;

// The q-value of one Accept-Encoding element's parameters; 1 when absent,
// 0 when malformed (a malformed preference is safest read as "not wanted").
double q_value(std::string_view params) noexcept {
  while (!params.empty()) {
    auto semi = params.find(';');
    auto param = trim(params.substr(0, semi));
    params = semi == std::string_view::npos ? std::string_view{} : params.substr(semi + 1);
    if (param.size() >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
      auto v = trim(param.substr(2));
      double q = 0;
      auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), q);
      if (ec != std::errc{} || ptr != v.data() + v.size() || q < 0 || q > 1) return 0;
      return q;
    }
  }
  return 1;
}

}  // namespace

bool accepts_gzip(std::string_view accept_encoding) noexcept {
  double gzip_q = -1;
  double star_q = -1;
  while (!accept_encoding.empty()) {
    auto comma = accept_encoding.find(',');
    auto element = trim(accept_encoding.substr(0, comma));
    accept_encoding =
        comma == std::string_view::npos ? std::string_view{} : accept_encoding.substr(comma + 1);
    auto semi = element.find(';');
    auto coding = trim(element.substr(0, semi));
    auto params = semi == std::string_view::npos ? std::string_view{} : element.substr(semi + 1);
    if (iequals(coding, "gzip") || iequals(coding, "x-gzip")) {
      gzip_q = q_value(params);
    } else if (coding == "*") {
      star_q = q_value(params);
    }
  }
  if (gzip_q >= 0) return gzip_q > 0;
  return star_q > 0;
}

bool is_json_content_type(std::string_view content_type) noexcept {
  auto media = trim(content_type.substr(0, content_type.find(';')));
  if (media.empty()) return true;
  if (iequals(media, "application/json")) return true;
  constexpr std::string_view prefix = "application/";
  constexpr std::string_view suffix = "+json";
  return media.size() > prefix.size() + suffix.size() &&
         iequals(media.substr(0, prefix.size()), prefix) &&
         iequals(media.substr(media.size() - suffix.size()), suffix);
}

BodyEncoding parse_content_encoding(std::string_view value) noexcept {
  value = trim(value);
  if (value.empty() || iequals(value, "identity")) return BodyEncoding::identity;
  if (iequals(value, "gzip") || iequals(value, "x-gzip")) return BodyEncoding::gzip;
  return BodyEncoding::unsupported;
}

}  // namespace metrics::server
