#include "detail/file_format.hpp"

#include <simdjson.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "metrics/core/json_codec.hpp"
#include "metrics/core/labels.hpp"

namespace metrics::storage::detail {
namespace {

constexpr std::string_view kFormatName = "metrics-snapshot";
constexpr std::int64_t kFormatVersion = 2;
constexpr std::int64_t kFormatVersionKeys = 3;
constexpr std::string_view kLogMagicV1 = "MTRCWAL1";
constexpr std::string_view kLogMagicV2 = "MTRCWAL2";
constexpr std::string_view kLogMagic = "MTRCWAL3";
// A record larger than this is treated as damage, not as a real record.
constexpr std::uint32_t kMaxRecordPayload = 1U << 30;

void put_u16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v & 0xff));
  out.push_back(static_cast<char>(v >> 8));
}
void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void set_u32(std::string& out, std::size_t at, std::uint32_t v) {
  for (std::size_t i = 0; i < 4; ++i)
    out[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
std::uint64_t get_le(std::string_view data, std::size_t at, std::size_t bytes) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < bytes; ++i) {
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(data[at + i])) << (8 * i);
  }
  return v;
}

// The checksum covers the log id, so that records of an earlier log left in
// a reused file never pass for records of the current one.
std::uint32_t crc_of(std::uint64_t log_id, std::string_view data) {
  std::string id;
  put_u64(id, log_id);
  auto crc = ::crc32(0L, reinterpret_cast<const Bytef*>(id.data()), static_cast<uInt>(id.size()));
  // zlib takes a uInt length; records are bounded by kMaxRecordPayload.
  crc = ::crc32(crc, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size()));
  return static_cast<std::uint32_t>(crc);
}

std::string hex64(std::uint64_t v) {
  std::array<char, 16> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v, 16);
  (void)ec;
  std::string out(16 - static_cast<std::size_t>(end - buf.data()), '0');
  out.append(buf.data(), end);
  return out;
}

// One entry of "metrics" (a classic value) or, with_labels, of "series".
core::Point decode_point(simdjson::dom::element el, std::size_t index, bool with_labels) {
  const auto where = [index, with_labels](std::string_view what) {
    return std::runtime_error((with_labels ? "series #" : "metric #") + std::to_string(index) +
                              ": " + std::string(what));
  };
  simdjson::dom::object obj;
  if (el.get_object().get(obj)) throw where("not an object");
  std::string_view id;
  std::string_view type_text;
  if (obj["id"].get_string().get(id)) throw where("missing or non-string \"id\"");
  if (auto err = core::validate_name(id)) throw where(*err);
  if (obj["type"].get_string().get(type_text)) throw where("missing or non-string \"type\"");
  const auto type = core::parse_type(type_text);
  if (!type) throw where("unknown type \"" + std::string(type_text) + "\"");
  core::Point p;
  p.id = std::string(id);
  p.type = *type;
  if (with_labels) {
    simdjson::dom::object labels;
    if (obj["labels"].get_object().get(labels)) throw where("missing or non-object \"labels\"");
    std::vector<core::Label> list;
    for (auto field : labels) {
      std::string_view value;
      if (field.value.get_string().get(value)) throw where("a label value is not a string");
      if (value.empty()) throw where("a label has an empty value");
      list.push_back({std::string(field.key), std::string(value)});
    }
    try {
      p.labels = core::Labels::make(std::move(list));
    } catch (const std::exception& e) {
      throw where(e.what());
    }
    if (obj["timestamp_ms"].get_int64().get(p.timestamp_ms)) {
      throw where("missing or non-integer \"timestamp_ms\"");
    }
  }
  if (*type == core::MetricType::counter) {
    if (obj["delta"].get_int64().get(p.total)) throw where("counter without an int64 \"delta\"");
    return p;
  }
  // A NaN or an infinity (remote write keeps any double) is its bits in hex.
  if (std::string_view bits; !obj["value_bits"].get_string().get(bits)) {
    std::uint64_t u = 0;
    const auto [end, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), u, 16);
    if (ec != std::errc{} || end != bits.data() + bits.size() || bits.size() != 16) {
      throw where("malformed \"value_bits\" (16 hex digits)");
    }
    p.value = std::bit_cast<double>(u);
    return p;
  }
  if (obj["value"].get_double().get(p.value)) throw where("gauge without a numeric \"value\"");
  return p;
}

void append_double(std::string& out, double v) {
  // Shortest text that reads back to the same double (std::to_chars without
  // a precision), so a restore is bit-exact. Exponents are valid JSON.
  std::array<char, 32> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  (void)ec;
  const std::string_view text(buf.data(), static_cast<std::size_t>(end - buf.data()));
  out += text;
  // JSON readers take "-0" or "18446744073709552000" for integers and lose the
  // sign of zero or fail on the range: mark every gauge as a floating value.
  if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
}

void append_value(std::string& out, const core::Point& p) {
  if (p.type == core::MetricType::counter) {
    out += ",\"type\":\"counter\",\"delta\":";
    out += std::to_string(p.total);
  } else {
    if (!std::isfinite(p.value)) {
      // JSON has no NaN or infinity: the bits, exactly (a stale marker's too).
      out += ",\"type\":\"gauge\",\"value_bits\":\"";
      out += hex64(std::bit_cast<std::uint64_t>(p.value));
      out += '"';
      return;
    }
    out += ",\"type\":\"gauge\",\"value\":";
    append_double(out, p.value);
  }
}

}  // namespace

std::string encode_snapshot(std::span<const core::Point> classic,
                            std::span<const core::Point> series,
                            std::optional<std::uint64_t> log_id, std::uint64_t seq,
                            std::span<const KeyRecord> keys) {
  std::string out;
  out.reserve(128 + classic.size() * 48 + series.size() * 96 + keys.size() * 96);
  out += "{\"format\":\"";
  out += kFormatName;
  out += "\",\"version\":";
  out += std::to_string(keys.empty() ? kFormatVersion : kFormatVersionKeys);
  if (log_id) {
    out += ",\"log_id\":\"";
    out += hex64(*log_id);
    out += "\",\"seq\":";
    out += std::to_string(seq);
  }
  out += ",\"metrics\":[";
  bool first = true;
  for (const auto& p : classic) {
    out += first ? "\n" : ",\n";
    first = false;
    out += "{\"id\":";
    core::append_json_string(out, p.id);
    append_value(out, p);
    out += '}';
  }
  out += "\n],\"series\":[";
  first = true;
  for (const auto& p : series) {
    out += first ? "\n" : ",\n";
    first = false;
    out += "{\"id\":";
    core::append_json_string(out, p.id);
    append_value(out, p);
    out += ",\"labels\":";
    core::append_labels_json(out, p.labels);
    out += ",\"timestamp_ms\":";
    out += std::to_string(p.timestamp_ms);
    out += '}';
  }
  out += "\n]";
  if (!keys.empty()) {
    out += ",\"idempotency_keys\":[";
    first = true;
    for (const auto& k : keys) {
      out += first ? "\n" : ",\n";
      first = false;
      out += "{\"key\":\"";
      out += to_hex(k.guard.key);
      out += "\",\"body\":\"";
      out += to_hex(k.guard.fingerprint);
      out += "\",\"ms\":";
      out += std::to_string(k.received_ms);
      out += '}';
    }
    out += "\n]";
  }
  out += "}\n";
  return out;
}

Snapshot decode_snapshot(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::element root;
  if (auto err = parser.parse(padded).get(root)) {
    throw std::runtime_error(std::string("not valid JSON: ") + simdjson::error_message(err));
  }
  Snapshot snap;
  simdjson::dom::array metrics;
  simdjson::dom::array series;
  if (root.is_array()) {
    metrics = root.get_array().value_unsafe();  // the Go server's format: a bare array
    snap.version = 0;
  } else {
    simdjson::dom::object obj;
    if (root.get_object().get(obj)) throw std::runtime_error("neither an object nor an array");
    std::string_view format;
    if (obj["format"].get_string().get(format) || format != kFormatName) {
      throw std::runtime_error("not a metrics snapshot (\"format\" is not \"metrics-snapshot\")");
    }
    std::int64_t version = 0;
    if (obj["version"].get_int64().get(version) || version < 1 || version > kFormatVersionKeys) {
      throw std::runtime_error("unsupported snapshot version (this program reads versions 1 to 3)");
    }
    snap.version = static_cast<int>(version);
    if (obj["metrics"].get_array().get(metrics)) {
      throw std::runtime_error("missing \"metrics\" array");
    }
    if (version >= 2 && obj["series"].get_array().get(series)) {
      throw std::runtime_error("missing \"series\" array");
    }
    std::string_view log_id;
    if (!obj["log_id"].get_string().get(log_id)) {
      std::uint64_t id = 0;
      auto [end, ec] = std::from_chars(log_id.data(), log_id.data() + log_id.size(), id, 16);
      if (ec != std::errc{} || end != log_id.data() + log_id.size()) {
        throw std::runtime_error("invalid \"log_id\"");
      }
      snap.log_id = id;
      if (obj["seq"].get_uint64().get(snap.seq)) throw std::runtime_error("invalid \"seq\"");
    }
  }
  std::size_t index = 0;
  for (auto el : metrics)
    snap.classic.push_back(decode_point(el, index++, false));
  if (snap.version < 2) {
    // Before series: each value was also its name's only series, of unknown time.
    snap.series = snap.classic;
    return snap;
  }
  index = 0;
  for (auto el : series)
    snap.series.push_back(decode_point(el, index++, true));
  if (snap.version >= 3) {
    simdjson::dom::array keys;
    if (root["idempotency_keys"].get_array().get(keys)) {
      throw std::runtime_error("missing \"idempotency_keys\" array");
    }
    index = 0;
    for (auto el : keys) {
      std::string_view key;
      std::string_view body;
      std::int64_t ms = 0;
      KeyRecord r;
      if (el["key"].get_string().get(key) || !from_hex(key, r.guard.key) ||
          el["body"].get_string().get(body) || !from_hex(body, r.guard.fingerprint) ||
          el["ms"].get_int64().get(ms)) {
        throw std::runtime_error("idempotency key #" + std::to_string(index) + ": malformed");
      }
      r.received_ms = ms;
      snap.keys.push_back(r);
      ++index;
    }
  }
  return snap;
}

std::string encode_log_header(std::uint64_t log_id) {
  std::string out(kLogMagic);
  put_u64(out, log_id);
  return out;
}

std::optional<LogHeader> decode_log_header(std::string_view data) {
  const auto prefix = data.substr(0, std::min(data.size(), kLogMagic.size()));
  const bool v1 = kLogMagicV1.substr(0, prefix.size()) == prefix;
  const bool v2 = kLogMagicV2.substr(0, prefix.size()) == prefix;
  const bool v3 = kLogMagic.substr(0, prefix.size()) == prefix;
  if (!v1 && !v2 && !v3) throw std::runtime_error("not a metrics write-ahead log (bad magic)");
  if (data.size() < kLogHeaderSize) return std::nullopt;
  // A prefix shorter than the magic matches every version: incomplete.
  return LogHeader{get_le(data, kLogMagic.size(), 8), v3 ? 3 : (v2 ? 2 : 1)};
}

namespace {

void put_name(std::string& out, core::MetricType type, std::string_view id) {
  // Names are validated to 255 bytes long before they get here; a longer
  // one would not fit its u16 length and must not corrupt the record.
  if (id.size() > 0xffff) throw std::length_error("metric name too long for the log");
  out.push_back(static_cast<char>(type));
  put_u16(out, static_cast<std::uint16_t>(id.size()));
  out += id;
}

void put_labels(std::string& out, const core::Labels& labels) {
  put_u32(out, static_cast<std::uint32_t>(labels.encoded().size()));
  out += labels.encoded();
}

std::uint64_t bits_of(const core::Point& p) {
  return p.type == core::MetricType::counter ? static_cast<std::uint64_t>(p.total)
                                             : std::bit_cast<std::uint64_t>(p.value);
}

void set_value(core::Point& p, std::uint64_t bits) {
  if (p.type == core::MetricType::counter) {
    p.total = static_cast<std::int64_t>(bits);
  } else {
    p.value = std::bit_cast<double>(bits);
  }
}

// Reads a record's body; false when it is malformed.
class BodyReader {
 public:
  explicit BodyReader(std::string_view payload) : payload_(payload) {}
  bool u8(unsigned& v) {
    if (left() < 1) return false;
    v = static_cast<unsigned char>(payload_[at_++]);
    return true;
  }
  bool le(std::uint64_t& v, std::size_t bytes) {
    if (left() < bytes) return false;
    v = get_le(payload_, at_, bytes);
    at_ += bytes;
    return true;
  }
  bool bytes(std::string_view& v, std::size_t n) {
    if (left() < n) return false;
    v = payload_.substr(at_, n);
    at_ += n;
    return true;
  }
  [[nodiscard]] bool done() const { return at_ == payload_.size(); }

 private:
  [[nodiscard]] std::size_t left() const { return payload_.size() - at_; }
  std::string_view payload_;
  std::size_t at_ = 0;
};

bool read_name(BodyReader& r, core::Point& p) {
  unsigned type = 0;
  std::uint64_t len = 0;
  std::string_view name;
  if (!r.u8(type) || type > 1 || !r.le(len, 2) || !r.bytes(name, len)) return false;
  p.type = static_cast<core::MetricType>(type);
  p.id = std::string(name);
  return true;
}

bool decode_v1(std::string_view payload, std::vector<LogChange>& out) {
  BodyReader r(payload);
  std::uint64_t count = 0;
  if (!r.le(count, 4)) return false;
  for (std::uint64_t i = 0; i < count; ++i) {
    LogChange c{LogChange::Kind::classic, {}, {}};
    std::uint64_t bits = 0;
    if (!read_name(r, c.point) || !r.le(bits, 8)) return false;
    set_value(c.point, bits);
    out.push_back(c);
    c.kind = LogChange::Kind::series;
    out.push_back(std::move(c));
  }
  return r.done();
}

// Versions 2 and 3 (which adds the idempotency keys, kind 3).
bool decode_v2(std::string_view payload, std::vector<LogChange>& out, bool keys) {
  BodyReader r(payload);
  std::uint64_t count = 0;
  if (!r.le(count, 4)) return false;
  for (std::uint64_t i = 0; i < count; ++i) {
    unsigned kind = 0;
    if (!r.u8(kind) || kind > (keys ? 3U : 2U)) return false;
    LogChange c{static_cast<LogChange::Kind>(kind), {}, {}};
    if (c.kind == LogChange::Kind::key) {
      std::string_view key;
      std::string_view body;
      std::uint64_t ms = 0;
      if (!r.bytes(key, 16) || !r.bytes(body, 16) || !r.le(ms, 8)) return false;
      std::copy(key.begin(), key.end(), c.key.guard.key.begin());
      std::copy(body.begin(), body.end(), c.key.guard.fingerprint.begin());
      c.key.received_ms = static_cast<std::int64_t>(ms);
      out.push_back(std::move(c));
      continue;
    }
    if (!read_name(r, c.point)) return false;
    if (c.kind != LogChange::Kind::classic) {
      std::uint64_t len = 0;
      std::string_view encoded;
      if (!r.le(len, 4) || !r.bytes(encoded, len)) return false;
      auto labels = core::Labels::from_encoded(encoded);
      if (!labels) return false;
      c.point.labels = std::move(*labels);
    }
    if (c.kind != LogChange::Kind::removed) {
      std::uint64_t bits = 0;
      if (!r.le(bits, 8)) return false;
      set_value(c.point, bits);
    }
    if (c.kind == LogChange::Kind::series) {
      std::uint64_t ms = 0;
      if (!r.le(ms, 8)) return false;
      c.point.timestamp_ms = static_cast<std::int64_t>(ms);
    }
    out.push_back(std::move(c));
  }
  return r.done();
}

}  // namespace

void append_log_record(std::string& out, std::uint64_t log_id, std::uint64_t seq,
                       std::span<const core::Point> series, std::span<const core::Point> classic,
                       std::span<const core::SeriesKey> removed, std::span<const KeyRecord> keys) {
  const auto start = out.size();
  put_u32(out, 0);  // length and crc, filled in below
  put_u32(out, 0);
  put_u64(out, seq);
  put_u32(out, static_cast<std::uint32_t>(series.size() + classic.size() + removed.size() +
                                          keys.size()));
  // Removals first: a series removed and written again in one group
  // (expiry, then a write) must end up written.
  for (const auto& k : removed) {
    out.push_back(static_cast<char>(LogChange::Kind::removed));
    put_name(out, k.type, k.id);
    put_labels(out, k.labels);
  }
  for (const auto& p : classic) {
    out.push_back(static_cast<char>(LogChange::Kind::classic));
    put_name(out, p.type, p.id);
    put_u64(out, bits_of(p));
  }
  for (const auto& p : series) {
    out.push_back(static_cast<char>(LogChange::Kind::series));
    put_name(out, p.type, p.id);
    put_labels(out, p.labels);
    put_u64(out, bits_of(p));
    put_u64(out, static_cast<std::uint64_t>(p.timestamp_ms));
  }
  for (const auto& k : keys) {
    out.push_back(static_cast<char>(LogChange::Kind::key));
    out.append(reinterpret_cast<const char*>(k.guard.key.data()), k.guard.key.size());
    out.append(reinterpret_cast<const char*>(k.guard.fingerprint.data()),
               k.guard.fingerprint.size());
    put_u64(out, static_cast<std::uint64_t>(k.received_ms));
  }
  const auto payload = out.size() - start - kLogRecordHeaderSize;
  set_u32(out, start, static_cast<std::uint32_t>(payload));
  // The checksum covers seq and payload, so a stale or torn record is detected.
  set_u32(out, start + 4, crc_of(log_id, std::string_view(out).substr(start + 8)));
}

ReplayResult replay_log(std::string_view records, const LogHeader& header, std::uint64_t min_seq,
                        const std::function<void(LogChange)>& apply) {
  ReplayResult result;
  std::size_t pos = 0;
  std::uint64_t prev_seq = 0;
  std::vector<LogChange> decoded;
  while (records.size() - pos >= kLogRecordHeaderSize) {
    const auto len = static_cast<std::uint32_t>(get_le(records, pos, 4));
    const auto crc = static_cast<std::uint32_t>(get_le(records, pos + 4, 4));
    const auto seq = get_le(records, pos + 8, 8);
    if (len > kMaxRecordPayload || records.size() - pos - kLogRecordHeaderSize < len) break;
    if (crc_of(header.log_id, records.substr(pos + 8, 8 + len)) != crc) break;
    if (result.records > 0 && seq <= prev_seq) break;
    // Decode fully before applying anything, so a malformed record changes nothing.
    const auto payload = records.substr(pos + kLogRecordHeaderSize, len);
    decoded.clear();
    const bool ok = header.version == 1 ? decode_v1(payload, decoded)
                                        : decode_v2(payload, decoded, header.version >= 3);
    if (!ok) {
      throw std::runtime_error("write-ahead log record " + std::to_string(seq) +
                               " has a valid checksum but a malformed body");
    }
    if (seq > min_seq) {
      for (auto& c : decoded)
        apply(std::move(c));
    }
    prev_seq = seq;
    result.last_seq = seq;
    ++result.records;
    pos += kLogRecordHeaderSize + len;
  }
  result.ignored_bytes = records.size() - pos;
  // Zeros are the unused, preallocated part of the log; anything else is a
  // record cut short by a crash (or damage).
  result.torn = records.find_first_not_of('\0', pos) != std::string_view::npos;
  return result;
}

}  // namespace metrics::storage::detail
