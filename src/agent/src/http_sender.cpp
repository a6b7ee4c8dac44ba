#include "http_sender.hpp"

#include <cctype>
#include <charconv>
#include <random>

#include "metrics/core/gzip.hpp"
#include "metrics/core/json_codec.hpp"
#include "metrics/core/value_format.hpp"
#include "metrics/outbound/client.hpp"

namespace metrics::agent::detail {
namespace {

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<std::string> base_url(std::string_view address, std::string* error) {
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
  return url;
}

std::optional<std::string> updates_url(std::string_view address, std::string* error) {
  auto base = base_url(address, error);
  if (base) *base += "/updates/";
  return base;
}

std::string encode_body(const core::Labels& identity, std::span<const core::Update> batch,
                        std::string_view idempotency_key) {
  std::string json = core::encode_envelope(identity, batch);
  if (!idempotency_key.empty()) {
    // encode_envelope gives {"labels":...}: the key goes first, inside.
    std::string keyed = "{\"idempotency_key\":";
    core::append_json_string(keyed, idempotency_key);
    keyed += ',';
    keyed.append(json, 1);
    json = std::move(keyed);
  }
  // Level 1: agent batches are small and repetitive; the fastest level
  // already compresses them ~5x and keeps the sample cost low.
  return core::gzip_compress(json, 1);
}

std::string idempotency_key(std::string_view prefix, std::uint64_t seq) {
  std::string key(prefix);
  key += '-';
  key += std::to_string(seq);
  return key;
}

std::string random_key_prefix() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device random;
  std::string prefix;
  prefix.reserve(32);
  for (int i = 0; i < 4; ++i) {
    const std::uint32_t word = random();
    for (int nibble = 0; nibble < 8; ++nibble)
      prefix += kHex[(word >> (4 * nibble)) & 0xF];
  }
  return prefix;
}

std::string encode_metric_body(const core::Labels& identity, const core::Update& metric) {
  if (metric.labels.empty()) {
    core::Update labelled = metric;
    labelled.labels = identity;
    return core::gzip_compress(core::encode_update(labelled), 1);
  }
  // The metric's own labels win over the identity's, as in an envelope.
  std::vector<core::Label> own;
  own.reserve(metric.labels.size());
  for (const core::LabelView l : metric.labels)
    own.push_back({std::string(l.name), std::string(l.value)});
  core::Update labelled = metric;
  labelled.labels = core::Labels::merge(identity, own);
  return core::gzip_compress(core::encode_update(labelled), 1);
}

std::string text_update_path(const core::Update& metric) {
  std::string path = "/update/";
  path += core::to_string(metric.type);
  path += '/';
  path += outbound::percent_encode(metric.id);
  path += '/';
  if (metric.type == core::MetricType::gauge) {
    core::append_gauge(path, metric.value);
  } else {
    core::append_counter(path, metric.delta);
  }
  return path;
}

}  // namespace metrics::agent::detail
