// The metric model shared by the server, the storages and the agent.
//
// A series is identified by its type, its name and its labels; a gauge
// holds the last double written, a counter the int64 sum of the deltas
// written. What arrives is an Update (a counter carries a delta); what is
// stored and answered is a Point (a counter carries its total). The classic
// value of Part 1 (type and name, no labels, every write of that type and
// name applied to it) is a Point with empty labels, keyed by MetricKey.
//
//   core::Update u = core::Update::counter("PollCount", 5, core::Labels::make({{"job", "a"}}));
//   if (auto err = core::validate_name(u.id)) { /* reject with *err */ }
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

#include "metrics/core/labels.hpp"

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

// What arrives: one write to one series. A gauge update replaces the
// value; a counter update adds `delta` to the total.
struct Update {
  std::string id;
  MetricType type = MetricType::gauge;
  Labels labels;
  // Counter: the amount to add.
  std::int64_t delta = 0;
  // Gauge: the new value.
  double value = 0;
  // Writes the series only and leaves the classic value of its type and
  // name alone (remote write in: samples that are series and nothing else).
  bool series_only = false;

  [[nodiscard]] static Update gauge(std::string id, double value, Labels labels = {}) {
    return Update{std::move(id), MetricType::gauge, std::move(labels), 0, value, false};
  }
  [[nodiscard]] static Update counter(std::string id, std::int64_t delta, Labels labels = {}) {
    return Update{std::move(id), MetricType::counter, std::move(labels), delta, 0, false};
  }

  friend bool operator==(const Update&, const Update&) = default;
};

// What is stored and returned: a series (or a classic value, whose labels
// are empty) as it stands.
struct Point {
  std::string id;
  MetricType type = MetricType::gauge;
  Labels labels;
  // Counter: the total.
  std::int64_t total = 0;
  // Gauge: the value.
  double value = 0;
  // The server's receive time of the last write, in milliseconds since the
  // Unix epoch; 0 when unknown (a classic value, or data from an older file).
  std::int64_t timestamp_ms = 0;

  [[nodiscard]] static Point gauge(std::string id, double value, Labels labels = {}) {
    return Point{std::move(id), MetricType::gauge, std::move(labels), 0, value, 0};
  }
  [[nodiscard]] static Point counter(std::string id, std::int64_t total, Labels labels = {}) {
    return Point{std::move(id), MetricType::counter, std::move(labels), total, 0, 0};
  }

  friend bool operator==(const Point&, const Point&) = default;
};

// The identity of a classic value: type and name.
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

// The identity of a series: type, name and labels.
struct SeriesKey {
  MetricType type = MetricType::gauge;
  std::string id;
  Labels labels;

  [[nodiscard]] static SeriesKey of(const Update& u) { return {u.type, u.id, u.labels}; }
  [[nodiscard]] static SeriesKey of(const Point& p) { return {p.type, p.id, p.labels}; }

  friend bool operator==(const SeriesKey&, const SeriesKey&) = default;
  // By name, then type, then labels.
  friend std::strong_ordering operator<=>(const SeriesKey& a, const SeriesKey& b) {
    if (auto c = a.id <=> b.id; c != 0) return c;
    if (auto c = a.type <=> b.type; c != 0) return c;
    return a.labels <=> b.labels;
  }
};

// A non-owning view of a series identity, for lookups without copies.
struct SeriesView {
  MetricType type = MetricType::gauge;
  std::string_view id;
  const Labels* labels = nullptr;

  SeriesView(MetricType t, std::string_view i, const Labels& l) noexcept
      : type(t), id(i), labels(&l) {}
  SeriesView(const SeriesKey& k) noexcept : SeriesView(k.type, k.id, k.labels) {}  // NOLINT
  SeriesView(const Update& u) noexcept : SeriesView(u.type, u.id, u.labels) {}     // NOLINT
  SeriesView(const Point& p) noexcept : SeriesView(p.type, p.id, p.labels) {}      // NOLINT
};

// Orders points by name, then type, then labels.
[[nodiscard]] bool point_less(const Point& a, const Point& b) noexcept;

// a + b when it fits in int64; nullopt on overflow.
[[nodiscard]] constexpr std::optional<std::int64_t> checked_add(std::int64_t a,
                                                                std::int64_t b) noexcept {
  std::int64_t out = 0;
  if (__builtin_add_overflow(a, b, &out)) return std::nullopt;
  return out;
}

inline std::size_t series_hash(MetricType type, std::string_view id,
                               const Labels& labels) noexcept {
  const std::size_t h =
      std::hash<std::string_view>{}(id) ^ (static_cast<std::size_t>(type) * 0x9e3779b97f4a7c15ULL);
  return h ^ (labels.hash() + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

// Transparent hash and equality over SeriesKey, Update, Point and
// SeriesView: `map.find(SeriesView(update))` looks up without a copy.
struct SeriesHash {
  using is_transparent = void;
  std::size_t operator()(SeriesView v) const noexcept {
    return series_hash(v.type, v.id, *v.labels);
  }
};
struct SeriesEqual {
  using is_transparent = void;
  bool operator()(SeriesView a, SeriesView b) const noexcept {
    return a.type == b.type && a.id == b.id && *a.labels == *b.labels;
  }
};

struct MetricKeyHash {
  using is_transparent = void;
  std::size_t operator()(const MetricKey& k) const noexcept {
    return std::hash<std::string_view>{}(k.id) ^
           (static_cast<std::size_t>(k.type) * 0x9e3779b97f4a7c15ULL);
  }
};

}  // namespace metrics::core
