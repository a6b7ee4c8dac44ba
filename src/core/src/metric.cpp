#include "metrics/core/metric.hpp"

#include <cstddef>
#include <cstdint>

#include "detail/utf8.hpp"

namespace metrics::core {

std::string_view to_string(MetricType type) noexcept {
  switch (type) {
    case MetricType::gauge:
      return "gauge";
    case MetricType::counter:
      return "counter";
  }
  return "unknown";
}

std::optional<MetricType> parse_type(std::string_view text) noexcept {
  if (text == "gauge") return MetricType::gauge;
  if (text == "counter") return MetricType::counter;
  return std::nullopt;
}

std::optional<std::string> validate_name(std::string_view name) {
  if (name.empty()) return "metric name is empty";
  if (name.size() > kMaxNameLength) return "metric name is longer than 255 bytes";
  for (std::size_t i = 0; i < name.size();) {
    const auto b = static_cast<unsigned char>(name[i]);
    if (b < 0x80) {
      if (b == '/') return "metric name contains '/'";
      if (b < 0x20 || b == 0x7F) return "metric name contains a control character";
      ++i;
      continue;
    }
    const std::size_t len = detail::utf8_sequence_length(name, i);
    if (len == 0) return "metric name is not valid UTF-8";
    i += len;
  }
  return std::nullopt;
}

bool point_less(const Point& a, const Point& b) noexcept {
  if (const auto c = a.id.compare(b.id); c != 0) return c < 0;
  if (a.type != b.type) return a.type < b.type;
  return a.labels < b.labels;
}

}  // namespace metrics::core
