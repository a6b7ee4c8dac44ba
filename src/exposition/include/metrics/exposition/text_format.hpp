// Prometheus text exposition format 0.0.4 (what `GET /metrics` answers and
// Prometheus scrapes):
//
//   # HELP name text              (optional)
//   # TYPE name gauge|counter     (once per family, before its samples)
//   name{label="value",...} value [timestamp_ms]
//
// Values are printed as Prometheus's Go client prints them (NaN, +Inf,
// -Inf, the shortest digits that read back to the same double in Go's %g
// layout: 1e+06, 0.001, 1.5e-07), int64 totals as plain integers. Names
// PromQL cannot spell are mapped: every character outside [a-zA-Z0-9_:]
// becomes '_' (one per UTF-8 character) and a leading digit gets a '_' in
// front; label names the same without ':'. Label values escape '\', '"' and
// newline.
//
// TextWriter streams into a caller's std::string (reuse it: no allocation
// per sample once it has grown) and guarantees that what it wrote parses:
// families come in strictly increasing order of mapped name, so a name's
// TYPE line appears once. write_points() sorts points into families and
// writes them all.
//
//   std::string out;
//   exposition::TextWriter w(out);
//   if (w.begin_family("http_requests_total", core::MetricType::counter, "Requests.")) {
//     w.write_integer(labels, 1027);
//   }
//
// Thread-safety: a TextWriter is used by one thread at a time; the free
// functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "metrics/core/labels.hpp"
#include "metrics/core/metric.hpp"

namespace metrics::exposition {

// The Content-Type of format 0.0.4.
inline constexpr std::string_view kTextContentType = "text/plain; version=0.0.4; charset=utf-8";

// True when `name` is a metric name PromQL can spell: [a-zA-Z_:][a-zA-Z0-9_:]*.
[[nodiscard]] bool is_valid_metric_name(std::string_view name) noexcept;
// True for a label name: [a-zA-Z_][a-zA-Z0-9_]*.
[[nodiscard]] bool is_valid_label_name(std::string_view name) noexcept;
// Appends the mapped metric name (the name itself when already valid; "_"
// for an empty one).
void append_metric_name(std::string& out, std::string_view name);
void append_label_name(std::string& out, std::string_view name);
[[nodiscard]] std::string map_metric_name(std::string_view name);
[[nodiscard]] std::string map_label_name(std::string_view name);

// Value text exactly as client_golang's expfmt writes a float64.
void append_value(std::string& out, double value);
// A label value with '\', '"' and newline escaped (no quotes added).
void append_label_value(std::string& out, std::string_view value);

class TextWriter {
 public:
  explicit TextWriter(std::string& out) noexcept : out_(&out) {}

  // Starts a family: writes `# HELP` (when help is not empty) and `# TYPE`.
  // Returns false and writes nothing when the mapped name is not greater
  // than the previous family's (a second TYPE line for a name, or a family
  // out of order, would not parse); the samples written until the next
  // successful begin_family() are then dropped and counted in dropped().
  bool begin_family(std::string_view name, core::MetricType type, std::string_view help = {});

  // One sample of the current family; no-op when there is none. A
  // timestamp is written only when given.
  void write(const core::Labels& labels, double value,
             std::optional<std::int64_t> timestamp_ms = std::nullopt);
  void write_integer(const core::Labels& labels, std::int64_t value,
                     std::optional<std::int64_t> timestamp_ms = std::nullopt);
  // Labels as raw pairs in the order given: names are mapped, empty values
  // left out, `__name__` skipped (the family gives the name), and a label
  // whose mapped name was already written in this sample left out.
  void write(std::span<const core::LabelView> labels, double value,
             std::optional<std::int64_t> timestamp_ms = std::nullopt);

  // Samples (or whole families) that could not be written.
  [[nodiscard]] std::size_t dropped() const noexcept { return dropped_; }

 private:
  bool open_sample();
  void write_label(std::string_view name, std::string_view value, bool& first);
  void finish(std::optional<std::int64_t> timestamp_ms);

  std::string* out_;
  std::string family_;  // mapped name of the current family
  bool have_family_ = false;
  bool family_ok_ = false;
  std::size_t dropped_ = 0;
  std::vector<std::pair<std::size_t, std::size_t>> names_;  // offset, length in *out_
};

struct TextOptions {
  // Write each point's timestamp_ms (when not 0). Off by default: a scraper
  // then stamps samples with its scrape time, which is what staleness needs.
  bool timestamps = false;
  // The # HELP text of a family, from its first point's (original) name and
  // type; null or "" for none.
  std::function<std::string_view(std::string_view name, core::MetricType type)> help{};
  // The # TYPE of a family, from its first point's name and type (null:
  // that type). Only the # TYPE line: values print by their points' type.
  std::function<core::MetricType(std::string_view name, core::MetricType type)> family_type{};
};

struct TextStats {
  std::size_t families = 0;
  std::size_t samples = 0;
  // Points whose mapped name and labels equal those of a point already
  // written (two names that map to one, e.g. "a.b" and "a-b"), or whose
  // mapped name belongs to a family of the other type: left out.
  std::size_t dropped = 0;
};

// Writes every point, grouped into families sorted by mapped name (then by
// original name, gauges before counters, and labels), one `# TYPE` each.
// Gauges print their value, counters their int64 total.
TextStats write_points(std::span<const core::Point> points, std::string& out,
                       const TextOptions& options = {});

}  // namespace metrics::exposition
