// Query values: label sets, samples, series and the four result types of
// PromQL (scalar, string, instant vector, range vector / matrix), as the
// Prometheus HTTP API returns them.
//
//   query::LabelSet ls = query::make_labels({{"__name__", "up"}, {"job", "api"}});
//   query::get(ls, "job");  // "api"
//
// Plain value types: safe to share between threads for reading.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "metrics/core/labels.hpp"

namespace metrics::query {

// Query-side labels: sorted by name, no repeats, no empty values, and
// (unlike core::Labels) may carry the reserved `__name__`.
using LabelSet = std::vector<core::Label>;

inline constexpr std::string_view kMetricName = "__name__";

// Sorts and drops empty values; the last of repeated names wins.
[[nodiscard]] LabelSet make_labels(std::vector<core::Label> labels);
// The value of `name`, "" when absent (PromQL's rule).
[[nodiscard]] std::string_view get(const LabelSet& labels, std::string_view name) noexcept;
// Sets (or, with an empty value, removes) one label, keeping the order.
void set(LabelSet& labels, std::string_view name, std::string_view value);
void remove(LabelSet& labels, std::string_view name);
// Prometheus's labels.Compare: pair by pair, names then values; a prefix first.
[[nodiscard]] int compare(const LabelSet& a, const LabelSet& b) noexcept;
// An unambiguous key (names and values separated by 0xFF), for maps.
[[nodiscard]] std::string key_of(const LabelSet& labels);
// Go's labels.String(): {a="1", b="2"}.
[[nodiscard]] std::string to_string(const LabelSet& labels);

struct SamplePoint {
  std::int64_t t = 0;  // milliseconds since the epoch
  double v = 0;
};

// One series as a Queryable returns it: every sample in timestamp order.
struct SeriesData {
  LabelSet labels;
  std::vector<SamplePoint> samples;
};

// One element of an instant vector. `t` is the evaluation time, except for
// the output of a plain selector, where it is the sample's own (timestamp()).
struct Sample {
  LabelSet metric;
  double v = 0;
  std::int64_t t = 0;
};
using Vector = std::vector<Sample>;

struct Series {
  LabelSet metric;
  std::vector<SamplePoint> points;
};
using Matrix = std::vector<Series>;

struct Scalar {
  std::int64_t t = 0;
  double v = 0;
};
struct String {
  std::int64_t t = 0;
  std::string v;
};

// What a query returns: exactly one of Prometheus's result types.
using Result = std::variant<Scalar, String, Vector, Matrix>;

// Prometheus's Go helpers, byte for byte. A sample value in JSON
// (jsonutil.MarshalValue): strconv.FormatFloat with 'f', or 'e' when
// |v| < 1e-6 or |v| >= 1e21, precision -1; "NaN", "+Inf", "-Inf".
// Appends Go's strconv.Quote of s (the ASCII and UTF-8 that label values hold).
void go_quote(std::string& out, std::string_view s);

[[nodiscard]] std::string format_value(double v);
// A value as a label (count_values): always 'f'.
[[nodiscard]] std::string format_label_value(double v);
// Milliseconds as seconds with 3 decimals when not whole
// (jsonutil.MarshalTimestamp).
[[nodiscard]] std::string format_timestamp(std::int64_t ms);

}  // namespace metrics::query
