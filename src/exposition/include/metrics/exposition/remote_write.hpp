// Prometheus remote write 1.0: the protobuf `WriteRequest` (prompb's
// remote.proto and types.proto), hand-written in both directions.
//
//   message WriteRequest { repeated TimeSeries timeseries = 1; reserved 2;
//                          repeated MetricMetadata metadata = 3; }
//   message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//   message Label        { string name = 1; string value = 2; }
//   message Sample       { double value = 1; int64 timestamp = 2; }
//   message MetricMetadata { MetricType type = 1; string metric_family_name = 2;
//                            string help = 4; string unit = 5; }
//
// The body on the wire is this message in snappy's block format
// (snappy_block.hpp). Encoding appends to a std::string, one series at a
// time, with no other allocation. Decoding is strict and bounds-checked:
// every malformed input (broken varint, length past the end, wrong wire
// type for a known field, groups nested too deep, more than the limits)
// throws core::InvalidInput whose message says what and where; unknown
// fields are skipped by their wire type, as protobuf requires. Decoding
// does not copy strings: the result views into the decompressed bytes.
//
//   std::string body;
//   exposition::append_series(body, "up", labels, std::array{exposition::Sample{1.0, ts}});
//   std::string wire = exposition::snappy_compress(body);
//   ...
//   std::string plain = exposition::snappy_decompress(wire, limits.max_uncompressed_bytes);
//   exposition::WriteRequestView req = exposition::decode_write_request(plain);  // throws
//   std::vector<exposition::ValidSeries> series = exposition::validate(req);       // throws
//
// Thread-safety: free functions with no shared state; a WriteRequestView is
// a plain value, valid while the bytes it was decoded from live.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/core/labels.hpp"

namespace metrics::exposition {

// Prometheus's stale marker: a NaN with this exact bit pattern
// (value.StaleNaN) says that a series ended. Other NaNs are plain values.
inline constexpr std::uint64_t kStaleNaNBits = 0x7ff0000000000002ULL;
[[nodiscard]] bool is_stale_marker(double value) noexcept;
[[nodiscard]] double stale_marker() noexcept;

// Header values of a remote-write 1.0 request (with a User-Agent).
inline constexpr std::string_view kRemoteWriteContentType = "application/x-protobuf";
inline constexpr std::string_view kRemoteWriteEncoding = "snappy";  // Content-Encoding
inline constexpr std::string_view kRemoteWriteVersion =
    "0.1.0";  // X-Prometheus-Remote-Write-Version

// The label that carries the metric name in remote write.
inline constexpr std::string_view kNameLabel = "__name__";

struct Sample {
  double value = 0;
  std::int64_t timestamp_ms = 0;
};

// prompb's MetricMetadata.MetricType.
enum class MetadataType : std::uint8_t {
  unknown = 0,
  counter = 1,
  gauge = 2,
  histogram = 3,
  gaugehistogram = 4,
  summary = 5,
  info = 6,
  stateset = 7,
};

struct MetadataView {
  // Values outside the enum are kept as sent (proto3 open enums).
  std::uint32_t type = 0;
  std::string_view family_name;
  std::string_view help;
  std::string_view unit;
};

// ---- Encoding ----------------------------------------------------------

// Appends one `timeseries` entry of a WriteRequest to `out` (a WriteRequest
// is the concatenation of its entries, so a request is built by appending
// series and metadata in any order). Labels are written as given; remote
// write wants them sorted by name with `__name__` among them.
void append_series(std::string& out, std::span<const core::LabelView> labels,
                   std::span<const Sample> samples);
// The same for a series of the project's model: `__name__` = name is
// written in its sorted place among the labels.
void append_series(std::string& out, std::string_view name, const core::Labels& labels,
                   std::span<const Sample> samples);
// Appends one `metadata` entry.
void append_metadata(std::string& out, const MetadataView& metadata);

// ---- Decoding ----------------------------------------------------------

struct DecodeLimits {
  // Bodies larger than this after snappy are refused before inflating
  // (also what the server passes to snappy_decompress).
  std::size_t max_uncompressed_bytes = 32U << 20;
  std::size_t max_series = 1'000'000;
  std::size_t max_samples = 2'000'000;
  // Labels of one series, `__name__` included.
  std::size_t max_labels_per_series = core::kMaxLabels + 1;
  std::size_t max_metadata = 100'000;
  // Nesting of unknown deprecated groups (wire types 3/4) being skipped.
  std::size_t max_group_depth = 32;
};

// A decoded request, flat: every series' labels and samples are ranges of
// the shared arrays (a few allocations per request, not per series).
struct WriteRequestView {
  struct Series {
    std::uint32_t label_begin = 0;
    std::uint32_t label_count = 0;
    std::uint32_t sample_begin = 0;
    std::uint32_t sample_count = 0;
  };
  std::vector<Series> series;
  std::vector<core::LabelView> labels;
  std::vector<Sample> samples;
  std::vector<MetadataView> metadata;

  [[nodiscard]] std::span<const core::LabelView> labels_of(const Series& s) const noexcept {
    return std::span(labels).subspan(s.label_begin, s.label_count);
  }
  [[nodiscard]] std::span<const Sample> samples_of(const Series& s) const noexcept {
    return std::span(samples).subspan(s.sample_begin, s.sample_count);
  }
};

// Parses an uncompressed WriteRequest. Throws core::InvalidInput ("remote
// write: ..." with the byte offset) on malformed protobuf or past a limit.
// Labels and samples are returned as sent: no label rule is applied yet.
[[nodiscard]] WriteRequestView decode_write_request(std::string_view bytes,
                                                    const DecodeLimits& limits = {});

// A series that passed the project's rules.
struct ValidSeries {
  std::string name;
  core::Labels labels;
  std::span<const Sample> samples;  // into the WriteRequestView
};

// Applies the project's rules to every series of a decoded request and
// returns them in request order. Throws core::InvalidInput naming the
// series (its index and, once known, its name and labels) when: `__name__`
// is missing, given twice or fails core::validate_name; another label
// breaks core's label rules (names [a-zA-Z_][a-zA-Z0-9_]*, not reserved,
// values UTF-8, at most 32 labels, no repeats); or its samples are not in
// strictly increasing timestamp order, also across several entries of the
// same series in one request. NaN values (stale markers included) and any
// other double are accepted. A series without samples (one that carried
// only exemplars or native histograms, fields this codec skips) is left
// out of the result after its labels are checked.
[[nodiscard]] std::vector<ValidSeries> validate(const WriteRequestView& request);
// The samples of the result view into the request: a temporary would leave
// them dangling.
std::vector<ValidSeries> validate(WriteRequestView&& request) = delete;

}  // namespace metrics::exposition
