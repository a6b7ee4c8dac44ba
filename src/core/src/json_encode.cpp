// The encoding half of json_codec.hpp; the decoding half (simdjson) is in
// json_codec.cpp.
#include <cmath>
#include <cstdint>

#include "detail/utf8.hpp"
#include "metrics/core/json_codec.hpp"
#include "metrics/core/value_format.hpp"

namespace metrics::core {
namespace {

// Bytes that cannot appear raw inside a JSON string, plus every non-ASCII
// byte so that the slow path can check its UTF-8.
constexpr bool needs_attention(unsigned char c) noexcept {
  return c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run_start = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (!needs_attention(c)) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      const std::size_t len = detail::utf8_sequence_length(s, i);
      if (len != 0) {
        i += len;
        continue;
      }
    }
    out.append(s.data() + run_start, i - run_start);
    if (c == '"') {
      out.append("\\\"");
    } else if (c == '\\') {
      out.append("\\\\");
    } else if (c < 0x20) {
      const char escaped[] = {'\\', 'u', '0', '0', kHex[c >> 4U], kHex[c & 0xFU]};
      out.append(escaped, sizeof escaped);
    } else {
      // Invalid UTF-8 would make the whole document invalid JSON.
      out.append("\xEF\xBF\xBD");
    }
    ++i;
    run_start = i;
  }
  out.append(s.data() + run_start, s.size() - run_start);
  out.push_back('"');
}

namespace {

void append_gauge_json(std::string& out, double value) {
  if (!std::isfinite(value)) {
    // Never stored or accepted, but an agent could sample one; "null"
    // keeps the document valid and the receiver names the bad metric.
    out.append("null");
  } else if (value == 0 && std::signbit(value)) {
    // "-0" reads back as the integer 0; the fraction keeps the sign.
    out.append("-0.0");
  } else {
    append_gauge(out, value);
  }
}

// The metric up to its labels: {"id":...,"type":...,"value"|"delta":...
template <class M>
void append_metric_head(std::string& out, const M& metric, std::int64_t count) {
  out.append("{\"id\":");
  append_json_string(out, metric.id);
  if (metric.type == MetricType::counter) {
    out.append(",\"type\":\"counter\",\"delta\":");
    append_counter(out, count);
  } else {
    out.append(",\"type\":\"gauge\",\"value\":");
    append_gauge_json(out, metric.value);
  }
}

template <class M>
void append_metric(std::string& out, const M& metric, std::int64_t count) {
  append_metric_head(out, metric, count);
  if (!metric.labels.empty()) {
    out.append(",\"labels\":");
    append_labels_json(out, metric.labels);
  }
  out.push_back('}');
}

template <class M>
std::string encode_array(std::span<const M> metrics) {
  std::string out;
  out.reserve(2 + metrics.size() * 64);
  out.push_back('[');
  bool first = true;
  for (const M& metric : metrics) {
    if (!first) out.push_back(',');
    first = false;
    append_json(out, metric);
  }
  out.push_back(']');
  return out;
}

}  // namespace

void append_labels_json(std::string& out, const Labels& labels) {
  out.push_back('{');
  bool first = true;
  for (LabelView l : labels) {
    if (!first) out.push_back(',');
    first = false;
    append_json_string(out, l.name);
    out.push_back(':');
    append_json_string(out, l.value);
  }
  out.push_back('}');
}

void append_json(std::string& out, const Point& point) {
  append_metric(out, point, point.total);
}

void append_json(std::string& out, const Point& point, std::string_view labels_json) {
  append_metric_head(out, point, point.total);
  if (!labels_json.empty()) {
    out.append(",\"labels\":");
    out.append(labels_json);
  }
  out.push_back('}');
}

void append_json(std::string& out, const Update& update) {
  append_metric(out, update, update.delta);
}

std::string encode_point(const Point& point) {
  std::string out;
  out.reserve(64 + point.id.size() + point.labels.encoded().size() * 2);
  append_json(out, point);
  return out;
}

std::string encode_points(std::span<const Point> points) {
  return encode_array(points);
}

std::string encode_update(const Update& update) {
  std::string out;
  out.reserve(64 + update.id.size() + update.labels.encoded().size() * 2);
  append_json(out, update);
  return out;
}

std::string encode_updates(std::span<const Update> updates) {
  return encode_array(updates);
}

std::string encode_envelope(const Labels& labels, std::span<const Update> updates) {
  std::string out;
  out.reserve(32 + labels.encoded().size() * 2 + updates.size() * 64);
  out.append("{\"labels\":");
  append_labels_json(out, labels);
  out.append(",\"metrics\":");
  out.append(encode_array(updates));
  out.push_back('}');
  return out;
}

std::string encode_error(std::string_view message) {
  std::string out;
  out.reserve(16 + message.size());
  out.append("{\"error\":");
  append_json_string(out, message);
  out.push_back('}');
  return out;
}

}  // namespace metrics::core
