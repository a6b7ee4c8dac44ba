#include "metrics/exposition/remote_write.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <optional>

#include "metrics/core/errors.hpp"
#include "metrics/core/metric.hpp"

namespace metrics::exposition {
namespace {

// Protobuf wire types.
enum Wire : std::uint32_t {
  kVarint = 0,
  kI64 = 1,
  kLen = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kI32 = 5
};

constexpr std::uint8_t tag(std::uint32_t field, Wire wire) {
  return static_cast<std::uint8_t>((field << 3) | wire);
}

// ---- encoding ----

constexpr std::size_t varint_size(std::uint64_t v) noexcept {
  return static_cast<std::size_t>((std::bit_width(v | 1U) + 6) / 7);
}

// Writes into a buffer sized beforehand: the sizes are computed first, so
// the output string grows once per series.
struct Out {
  char* p;
  void byte(std::uint8_t b) noexcept { *p++ = static_cast<char>(b); }
  void varint(std::uint64_t v) noexcept {
    while (v >= 0x80) {
      byte(static_cast<std::uint8_t>(v | 0x80));
      v >>= 7;
    }
    byte(static_cast<std::uint8_t>(v));
  }
  void bytes(std::string_view s) noexcept {
    if (!s.empty()) std::memcpy(p, s.data(), s.size());
    p += s.size();
  }
  void fixed64(std::uint64_t v) noexcept {
    for (int i = 0; i < 8; ++i) {
      byte(static_cast<std::uint8_t>(v));
      v >>= 8;
    }
  }
  // A string field; proto3 leaves empty strings out.
  void string_field(std::uint8_t t, std::string_view s) noexcept {
    if (s.empty()) return;
    byte(t);
    varint(s.size());
    bytes(s);
  }
};

constexpr std::size_t string_field_size(std::string_view s) noexcept {
  return s.empty() ? 0 : 1 + varint_size(s.size()) + s.size();
}

std::size_t label_size(std::string_view name, std::string_view value) noexcept {
  return string_field_size(name) + string_field_size(value);
}

std::size_t sample_size(const Sample& s) noexcept {
  // A +0.0 value and a zero timestamp are proto3 defaults and left out; -0.0
  // is written, so that its sign survives.
  const auto bits = std::bit_cast<std::uint64_t>(s.value);
  return (bits != 0 ? 9 : 0) +
         (s.timestamp_ms != 0 ? 1 + varint_size(static_cast<std::uint64_t>(s.timestamp_ms)) : 0);
}

void write_label(Out& o, std::string_view name, std::string_view value) {
  o.byte(tag(1, kLen));
  o.varint(label_size(name, value));
  o.string_field(tag(1, kLen), name);
  o.string_field(tag(2, kLen), value);
}

void write_sample(Out& o, const Sample& s) {
  o.byte(tag(2, kLen));
  o.varint(sample_size(s));
  if (const auto bits = std::bit_cast<std::uint64_t>(s.value); bits != 0) {
    o.byte(tag(1, kI64));
    o.fixed64(bits);
  }
  if (s.timestamp_ms != 0) {
    o.byte(tag(2, kVarint));
    o.varint(static_cast<std::uint64_t>(s.timestamp_ms));
  }
}

std::size_t samples_size(std::span<const Sample> samples) noexcept {
  std::size_t n = 0;
  for (const Sample& s : samples) {
    const std::size_t one = sample_size(s);
    n += 1 + varint_size(one) + one;
  }
  return n;
}

char* grow(std::string& out, std::size_t n) {
  const std::size_t old = out.size();
  out.resize(old + n);
  return out.data() + old;
}

// ---- decoding ----

// A bounded view of one message: every read checks against `end`, and
// errors give the offset from the start of the whole request.
class Reader {
 public:
  Reader(const char* base, const char* begin, const char* end) noexcept
      : base_(base), p_(begin), end_(end) {}

  [[nodiscard]] bool done() const noexcept { return p_ == end_; }
  [[nodiscard]] std::size_t offset() const noexcept { return static_cast<std::size_t>(p_ - base_); }

  [[noreturn]] void fail(const std::string& what) const { fail_at(offset(), what); }
  [[noreturn]] static void fail_at(std::size_t at, const std::string& what) {
    throw core::InvalidInput("remote write: " + what + " at byte " + std::to_string(at));
  }

  std::uint64_t varint() {
    // Tags and most lengths fit in one byte.
    if (p_ != end_ && static_cast<std::uint8_t>(*p_) < 0x80) {
      return static_cast<std::uint8_t>(*p_++);
    }
    std::uint64_t v = 0;
    const char* const start = p_;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) {
        p_ = start;
        fail("truncated varint");
      }
      const auto b = static_cast<std::uint8_t>(*p_++);
      // The tenth byte holds bit 63 only.
      if (shift == 63 && b > 1) {
        p_ = start;
        fail("malformed varint (more than 64 bits)");
      }
      v |= std::uint64_t{b & 0x7FU} << shift;
      if (b < 0x80) return v;
    }
    p_ = start;
    fail("malformed varint (more than 10 bytes)");
  }

  std::uint64_t fixed64() {
    if (end_ - p_ < 8) fail("truncated 64-bit field");
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i)
      v = (v << 8) | static_cast<std::uint8_t>(p_[i]);
    p_ += 8;
    return v;
  }

  // A length-delimited payload.
  std::string_view bytes() {
    const std::size_t at = offset();
    const std::uint64_t len = varint();
    if (len > static_cast<std::uint64_t>(end_ - p_)) {
      throw core::InvalidInput("remote write: length " + std::to_string(len) + " at byte " +
                               std::to_string(at) + " runs past the end of its message (" +
                               std::to_string(end_ - p_) + " bytes left)");
    }
    const std::string_view out(p_, static_cast<std::size_t>(len));
    p_ += len;
    return out;
  }

  Reader sub(std::string_view payload) const noexcept {
    return {base_, payload.data(), payload.data() + payload.size()};
  }

  struct Tag {
    std::uint32_t field;
    std::uint32_t wire;
    std::size_t at;  // offset of the tag, for errors
  };
  Tag next_tag() {
    const std::size_t at = offset();
    const std::uint64_t t = varint();
    const std::uint64_t field = t >> 3;
    const auto wire = static_cast<std::uint32_t>(t & 7);
    if (field == 0 || field > (1U << 29) - 1) fail("invalid field number " + std::to_string(field));
    if (wire > kI32) fail("invalid wire type " + std::to_string(wire));
    return {static_cast<std::uint32_t>(field), wire, at};
  }

  // Skips the value of an unknown field of the given wire type.
  void skip(Tag t, std::size_t max_depth, std::size_t depth = 0) {
    switch (t.wire) {
      case kVarint:
        (void)varint();
        return;
      case kI64:
        (void)fixed64();
        return;
      case kLen:
        (void)bytes();
        return;
      case kI32:
        if (end_ - p_ < 4) fail("truncated 32-bit field");
        p_ += 4;
        return;
      case kStartGroup:
        if (depth >= max_depth) fail("groups nested deeper than " + std::to_string(max_depth));
        for (;;) {
          if (done()) fail("group " + std::to_string(t.field) + " is not closed");
          const Tag inner = next_tag();
          if (inner.wire == kEndGroup) {
            if (inner.field != t.field)
              fail("end of group " + std::to_string(inner.field) + " closes group " +
                   std::to_string(t.field));
            return;
          }
          skip(inner, max_depth, depth + 1);
        }
      case kEndGroup:
      default:
        fail("end of group " + std::to_string(t.field) + " without its start");
    }
  }

  void expect(Tag t, Wire wire, std::string_view what) const {
    if (t.wire != wire) {
      fail_at(t.at, std::string(what) + " has wire type " + std::to_string(t.wire) + ", expected " +
                        std::to_string(static_cast<std::uint32_t>(wire)));
    }
  }

 private:
  const char* base_;
  const char* p_;
  const char* end_;
};

core::LabelView decode_label(Reader r, const DecodeLimits& limits) {
  core::LabelView l;
  while (!r.done()) {
    const auto t = r.next_tag();
    if (t.field == 1) {
      r.expect(t, kLen, "Label.name (1)");
      l.name = r.bytes();
    } else if (t.field == 2) {
      r.expect(t, kLen, "Label.value (2)");
      l.value = r.bytes();
    } else {
      r.skip(t, limits.max_group_depth);
    }
  }
  return l;
}

Sample decode_sample(Reader r, const DecodeLimits& limits) {
  Sample s;
  while (!r.done()) {
    const auto t = r.next_tag();
    if (t.field == 1) {
      r.expect(t, kI64, "Sample.value (1)");
      s.value = std::bit_cast<double>(r.fixed64());
    } else if (t.field == 2) {
      r.expect(t, kVarint, "Sample.timestamp (2)");
      s.timestamp_ms = static_cast<std::int64_t>(r.varint());
    } else {
      r.skip(t, limits.max_group_depth);
    }
  }
  return s;
}

void decode_series(Reader r, const DecodeLimits& limits, WriteRequestView& out) {
  WriteRequestView::Series s;
  s.label_begin = static_cast<std::uint32_t>(out.labels.size());
  s.sample_begin = static_cast<std::uint32_t>(out.samples.size());
  while (!r.done()) {
    const auto t = r.next_tag();
    if (t.field == 1) {
      r.expect(t, kLen, "TimeSeries.labels (1)");
      if (s.label_count >= limits.max_labels_per_series) {
        r.fail("series " + std::to_string(out.series.size()) + " has more than " +
               std::to_string(limits.max_labels_per_series) + " labels");
      }
      out.labels.push_back(decode_label(r.sub(r.bytes()), limits));
      ++s.label_count;
    } else if (t.field == 2) {
      r.expect(t, kLen, "TimeSeries.samples (2)");
      if (out.samples.size() >= limits.max_samples) {
        r.fail("more than " + std::to_string(limits.max_samples) + " samples in one request");
      }
      out.samples.push_back(decode_sample(r.sub(r.bytes()), limits));
      ++s.sample_count;
    } else {
      r.skip(t, limits.max_group_depth);
    }
  }
  out.series.push_back(s);
}

MetadataView decode_metadata(Reader r, const DecodeLimits& limits) {
  MetadataView m;
  while (!r.done()) {
    const auto t = r.next_tag();
    switch (t.field) {
      case 1:
        r.expect(t, kVarint, "MetricMetadata.type (1)");
        // An enum is an int32 on the wire; keep its low 32 bits as proto does.
        m.type = static_cast<std::uint32_t>(r.varint());
        break;
      case 2:
        r.expect(t, kLen, "MetricMetadata.metric_family_name (2)");
        m.family_name = r.bytes();
        break;
      case 4:
        r.expect(t, kLen, "MetricMetadata.help (4)");
        m.help = r.bytes();
        break;
      case 5:
        r.expect(t, kLen, "MetricMetadata.unit (5)");
        m.unit = r.bytes();
        break;
      default:
        r.skip(t, limits.max_group_depth);
    }
  }
  return m;
}

std::string describe(std::size_t index, std::string_view name, const core::Labels* labels) {
  std::string out = "series " + std::to_string(index);
  if (!name.empty()) {
    out += ' ';
    out.append(name.substr(0, 128));
    if (labels != nullptr) out += labels->to_string();
  }
  return out;
}

}  // namespace

bool is_stale_marker(double value) noexcept {
  return std::bit_cast<std::uint64_t>(value) == kStaleNaNBits;
}

double stale_marker() noexcept {
  return std::bit_cast<double>(kStaleNaNBits);
}

void append_series(std::string& out, std::span<const core::LabelView> labels,
                   std::span<const Sample> samples) {
  std::size_t body = samples_size(samples);
  for (const core::LabelView& l : labels) {
    const std::size_t one = label_size(l.name, l.value);
    body += 1 + varint_size(one) + one;
  }
  Out o{grow(out, 1 + varint_size(body) + body)};
  o.byte(tag(1, kLen));
  o.varint(body);
  for (const core::LabelView& l : labels)
    write_label(o, l.name, l.value);
  for (const Sample& s : samples)
    write_sample(o, s);
}

void append_series(std::string& out, std::string_view name, const core::Labels& labels,
                   std::span<const Sample> samples) {
  const auto label_entry = [](std::string_view n, std::string_view v) {
    const std::size_t one = label_size(n, v);
    return 1 + varint_size(one) + one;
  };
  std::size_t body = samples_size(samples) + label_entry(kNameLabel, name);
  for (const core::LabelView l : labels)
    body += label_entry(l.name, l.value);
  Out o{grow(out, 1 + varint_size(body) + body)};
  o.byte(tag(1, kLen));
  o.varint(body);
  // Labels are sorted; "__name__" goes before the first name greater than it
  // (upper-case letters sort before '_').
  bool name_written = false;
  for (const core::LabelView l : labels) {
    if (!name_written && l.name > kNameLabel) {
      write_label(o, kNameLabel, name);
      name_written = true;
    }
    write_label(o, l.name, l.value);
  }
  if (!name_written) write_label(o, kNameLabel, name);
  for (const Sample& s : samples)
    write_sample(o, s);
}

void append_metadata(std::string& out, const MetadataView& m) {
  const std::size_t body = (m.type != 0 ? 1 + varint_size(m.type) : 0) +
                           string_field_size(m.family_name) + string_field_size(m.help) +
                           string_field_size(m.unit);
  Out o{grow(out, 1 + varint_size(body) + body)};
  o.byte(tag(3, kLen));
  o.varint(body);
  if (m.type != 0) {
    o.byte(tag(1, kVarint));
    o.varint(m.type);
  }
  o.string_field(tag(2, kLen), m.family_name);
  o.string_field(tag(4, kLen), m.help);
  o.string_field(tag(5, kLen), m.unit);
}

WriteRequestView decode_write_request(std::string_view bytes, const DecodeLimits& limits) {
  if (bytes.size() > limits.max_uncompressed_bytes) {
    throw core::InvalidInput("remote write: request of " + std::to_string(bytes.size()) +
                             " bytes exceeds the limit of " +
                             std::to_string(limits.max_uncompressed_bytes) + " bytes");
  }
  // The flat arrays index with 32 bits.
  if (bytes.size() > std::numeric_limits<std::uint32_t>::max()) {
    throw core::InvalidInput("remote write: request larger than 4 GiB");
  }
  WriteRequestView out;
  Reader r(bytes.data(), bytes.data(), bytes.data() + bytes.size());
  while (!r.done()) {
    const auto t = r.next_tag();
    if (t.field == 1) {
      r.expect(t, kLen, "WriteRequest.timeseries (1)");
      if (out.series.size() >= limits.max_series) {
        r.fail("more than " + std::to_string(limits.max_series) + " series in one request");
      }
      decode_series(r.sub(r.bytes()), limits, out);
    } else if (t.field == 3) {
      r.expect(t, kLen, "WriteRequest.metadata (3)");
      if (out.metadata.size() >= limits.max_metadata) {
        r.fail("more than " + std::to_string(limits.max_metadata) + " metadata entries");
      }
      out.metadata.push_back(decode_metadata(r.sub(r.bytes()), limits));
    } else {
      r.skip(t, limits.max_group_depth);
    }
  }
  return out;
}

std::vector<ValidSeries> validate(const WriteRequestView& request) {
  std::vector<ValidSeries> out;
  out.reserve(request.series.size());
  std::vector<std::size_t> request_index;  // of each entry of `out`, for errors
  request_index.reserve(request.series.size());
  std::vector<core::LabelView> rest;
  std::string encoded;
  for (std::size_t i = 0; i < request.series.size(); ++i) {
    const auto& s = request.series[i];
    std::optional<std::string_view> name;
    rest.clear();
    for (const core::LabelView& l : request.labels_of(s)) {
      if (l.name == kNameLabel) {
        if (name) throw core::InvalidInput(describe(i, *name, nullptr) + ": __name__ given twice");
        name = l.value;
        continue;
      }
      rest.push_back(l);
    }
    if (!name) throw core::InvalidInput(describe(i, {}, nullptr) + ": no __name__ label");
    if (auto problem = core::validate_name(*name)) {
      throw core::InvalidInput(describe(i, {}, nullptr) + ": __name__: " + *problem);
    }
    std::sort(rest.begin(), rest.end(),
              [](const core::LabelView& a, const core::LabelView& b) { return a.name < b.name; });
    // Labels::from_encoded checks every rule (names, values, order, count)
    // in one pass; only when it refuses does the slower pass below find the
    // label to name. A 0xFF byte (never in valid UTF-8) would shift the
    // encoding's separators, so such a label goes to the slow pass directly.
    bool separator_inside = false;
    bool repeated = false;
    for (std::size_t k = 0; k < rest.size(); ++k) {
      separator_inside |= rest[k].name.find('\xFF') != std::string_view::npos ||
                          rest[k].value.find('\xFF') != std::string_view::npos;
      repeated |= k > 0 && rest[k].name == rest[k - 1].name;
    }
    std::optional<core::Labels> labels;
    if (!separator_inside && !repeated) {
      encoded.clear();
      for (const core::LabelView& l : rest) {
        if (l.value.empty()) {
          // Empty means absent, but its name must still be valid.
          if (core::validate_label_name(l.name)) {
            separator_inside = true;  // let the slow pass name it
            break;
          }
          continue;
        }
        encoded.append(l.name);
        encoded.push_back('\xFF');
        encoded.append(l.value);
        encoded.push_back('\xFF');
      }
      if (!separator_inside) labels = core::Labels::from_encoded(encoded);
    }
    if (!labels) {
      for (const core::LabelView& l : rest) {
        auto problem = core::validate_label_name(l.name);
        if (!problem) problem = core::validate_label_value(l.name, l.value);
        if (problem) throw core::InvalidInput(describe(i, *name, nullptr) + ": " + *problem);
      }
      for (std::size_t k = 1; k < rest.size(); ++k) {
        if (rest[k].name == rest[k - 1].name) {
          throw core::InvalidInput(describe(i, *name, nullptr) + ": label \"" +
                                   std::string(rest[k].name) + "\" is given twice");
        }
      }
      const auto present = std::count_if(rest.begin(), rest.end(),
                                         [](const core::LabelView& l) { return !l.value.empty(); });
      if (static_cast<std::size_t>(present) > core::kMaxLabels) {
        throw core::InvalidInput(describe(i, *name, nullptr) + ": more than " +
                                 std::to_string(core::kMaxLabels) + " labels");
      }
      throw core::InvalidInput(describe(i, *name, nullptr) + ": invalid labels");
    }
    const auto samples = request.samples_of(s);
    for (std::size_t k = 1; k < samples.size(); ++k) {
      if (samples[k].timestamp_ms <= samples[k - 1].timestamp_ms) {
        throw core::InvalidInput(
            describe(i, *name, &*labels) + ": sample timestamps out of order (" +
            std::to_string(samples[k].timestamp_ms) +
            (samples[k].timestamp_ms == samples[k - 1].timestamp_ms ? " repeats " : " after ") +
            std::to_string(samples[k - 1].timestamp_ms) + ")");
      }
    }
    if (samples.empty()) continue;
    out.push_back({std::string(*name), std::move(*labels), samples});
    request_index.push_back(i);
  }

  // The same series may come in several entries: their samples must follow
  // one another in time too. Sorting indices by hash finds the repeats
  // without a map; entries of one run are compared in request order.
  std::vector<std::pair<std::size_t, std::uint32_t>> by_hash(out.size());
  for (std::size_t k = 0; k < out.size(); ++k) {
    by_hash[k] = {core::series_hash(core::MetricType::gauge, out[k].name, out[k].labels),
                  static_cast<std::uint32_t>(k)};
  }
  std::sort(by_hash.begin(), by_hash.end());
  for (std::size_t a = 0; a < by_hash.size();) {
    std::size_t b = a + 1;
    while (b < by_hash.size() && by_hash[b].first == by_hash[a].first)
      ++b;
    for (std::size_t x = a + 1; x < b; ++x) {
      const ValidSeries& later = out[by_hash[x].second];
      for (std::size_t y = x; y-- > a;) {
        const ValidSeries& earlier = out[by_hash[y].second];
        if (earlier.name != later.name || earlier.labels != later.labels) continue;
        if (later.samples.front().timestamp_ms <= earlier.samples.back().timestamp_ms) {
          throw core::InvalidInput(
              describe(request_index[by_hash[x].second], later.name, &later.labels) +
              ": sample timestamps out of order across entries of the same series (" +
              std::to_string(later.samples.front().timestamp_ms) + " after " +
              std::to_string(earlier.samples.back().timestamp_ms) + ")");
        }
        break;  // the nearest earlier entry already covers the ones before it
      }
    }
    a = b;
  }
  return out;
}

}  // namespace metrics::exposition
