// Fuzzes the text path: the route table over an arbitrary method and target
// (and the query-string parser over it), and
// the value and name parsers behind POST /update/{type}/{name}/{value}.
// Properties: a parsed gauge is finite and format_gauge prints it in plain
// decimal that parses back bit for bit; counters round-trip; a name that
// validate_name accepts obeys the contract.
//
// Input: byte 0 picks the method, the rest is the target (and the text
// given to the parsers).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "metrics/core/metric.hpp"
#include "metrics/core/value_format.hpp"
#include "metrics/server/router.hpp"
#include "metrics/server/service.hpp"

namespace {

namespace core = metrics::core;
namespace server = metrics::server;
namespace http = boost::beast::http;

void check_plain_decimal(std::string_view text) {
  FUZZ_CHECK(!text.empty());
  std::size_t i = text.front() == '-' ? 1 : 0;
  FUZZ_CHECK(i < text.size());
  const auto point = text.find('.');
  for (std::size_t j = i; j < text.size(); ++j) {
    FUZZ_CHECK(j == point || (text[j] >= '0' && text[j] <= '9'));
  }
  if (point != std::string_view::npos) {
    FUZZ_CHECK(point > i && point + 1 < text.size());
    FUZZ_CHECK(text.back() != '0');
  }
  // No leading zeros ("0.5" is fine, "007" is not).
  FUZZ_CHECK(!(text[i] == '0' && i + 1 < text.size() && text[i + 1] != '.'));
}

void check_gauge(double v) {
  FUZZ_CHECK(std::isfinite(v));
  const auto text = core::format_gauge(v);
  check_plain_decimal(text);
  const auto back = core::parse_gauge(text);
  FUZZ_CHECK(back.has_value());
  FUZZ_CHECK(std::bit_cast<std::uint64_t>(*back) == std::bit_cast<std::uint64_t>(v));
  std::string appended = "x";
  core::append_gauge(appended, v);
  FUZZ_CHECK(appended.substr(1) == text);
}

void check_name(std::string_view name) {
  if (core::validate_name(name)) return;
  FUZZ_CHECK(!name.empty() && name.size() <= core::kMaxNameLength);
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    FUZZ_CHECK(c != '/' && u >= 0x20 && u != 0x7f);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto method =
      static_cast<http::verb>(data[0] % (static_cast<unsigned>(http::verb::unlink) + 1));
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  static const server::RouteTable table(server::default_routes());
  server::RouteMatch r;
  table.match(method, text, r);
  if (r.route == nullptr) {
    // Unknown path (a message says why) or known path and wrong method (Allow).
    FUZZ_CHECK(r.method_not_allowed() ? r.error.empty() : !r.error.empty());
  } else {
    FUZZ_CHECK(r.allow.empty());
    const std::string_view name = r.route->name;
    if (name == "update_text" || name == "value_text") {
      if (r.error.empty()) {  // else a malformed escape (400)
        FUZZ_CHECK(!r.param("name").empty());
        check_name(r.param("name"));
        if (auto v = core::parse_gauge(r.param("value"))) check_gauge(*v);
      }
    }
  }
  server::QueryParams query;
  (void)query.parse(text);
  // At most one item per '&'-separated piece.
  FUZZ_CHECK(query.size() <=
             static_cast<std::size_t>(std::count(text.begin(), text.end(), '&')) + 1);
  std::string decoded;
  if (server::percent_decode(text, decoded)) FUZZ_CHECK(decoded.size() <= text.size());

  if (auto v = core::parse_gauge(text)) check_gauge(*v);
  if (auto c = core::parse_counter(text)) {
    const auto printed = core::format_counter(*c);
    FUZZ_CHECK(core::parse_counter(printed) == c);
  }
  check_name(text);

  // The raw bytes as doubles: every finite one must format and read back.
  for (std::size_t at = 0; at + 8 <= text.size(); at += 8) {
    double v = 0;
    std::memcpy(&v, text.data() + at, sizeof v);
    if (std::isfinite(v)) check_gauge(v);
  }
  return 0;
}
