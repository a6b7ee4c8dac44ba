// The metric model shared by the server, the storages and the agent.
//
// A metric is identified by its type and its name; a gauge holds the last
// double written, a counter the int64 sum of the deltas written.
//
//   core::Metric m = core::Metric::counter("PollCount", 5);
//   if (auto err = core::validate_name(m.id)) { /* reject with *err */ }
//
// Everything here is a plain value type: safe to use from any thread as long
// as one object is not written by two threads at once.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace metrics::core {

enum class MetricType : std::uint8_t { gauge = 0, counter = 1 };

// "gauge" or "counter".
[[nodiscard]] std::string_view to_string(MetricType type) noexcept;
// Parses "gauge" / "counter" (exact, lowercase); nullopt otherwise.
[[nodiscard]] std::optional<MetricType> parse_type(std::string_view text) noexcept;

// Longest accepted name, in bytes.
inline constexpr std::size_t kMaxNameLength = 255;

// Returns a client-facing message when the name is invalid (empty, longer
// than kMaxNameLength, contains '/', a control character, or is not UTF-8),
// nullopt when it is fine.
[[nodiscard]] std::optional<std::string> validate_name(std::string_view name);

struct Metric {
  std::string id;
  MetricType type = MetricType::gauge;
  // Counter: the delta in a request, the stored total in an answer.
  std::int64_t delta = 0;
  // Gauge: the value.
  double value = 0;

  [[nodiscard]] static Metric gauge(std::string id, double value) {
    return Metric{std::move(id), MetricType::gauge, 0, value};
  }
  [[nodiscard]] static Metric counter(std::string id, std::int64_t delta) {
    return Metric{std::move(id), MetricType::counter, delta, 0};
  }

  friend bool operator==(const Metric&, const Metric&) = default;
};

// The identity of a metric: type and name.
struct MetricKey {
  MetricType type = MetricType::gauge;
  std::string id;

  friend bool operator==(const MetricKey&, const MetricKey&) = default;
  // Sorted by name, then type: the order of the HTML page and of list().
  friend std::strong_ordering operator<=>(const MetricKey& a, const MetricKey& b) {
    if (auto c = a.id <=> b.id; c != 0) return c;
    return a.type <=> b.type;
  }
};

// Orders metrics by name, then type.
[[nodiscard]] bool metric_less(const Metric& a, const Metric& b) noexcept;

// a + b when it fits in int64; nullopt on overflow.
[[nodiscard]] constexpr std::optional<std::int64_t> checked_add(std::int64_t a,
                                                                std::int64_t b) noexcept {
  std::int64_t out = 0;
  if (__builtin_add_overflow(a, b, &out)) return std::nullopt;
  return out;
}

struct MetricKeyHash {
  using is_transparent = void;
  std::size_t operator()(const MetricKey& k) const noexcept {
    return std::hash<std::string_view>{}(k.id) ^
           (static_cast<std::size_t>(k.type) * 0x9e3779b97f4a7c15ULL);
  }
};

}  // namespace metrics::core
