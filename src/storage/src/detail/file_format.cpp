#include "detail/file_format.hpp"

#include <simdjson.h>
#include <zlib.h>

#include <array>
#include <bit>
#include <charconv>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "metrics/core/json_codec.hpp"

namespace metrics::storage::detail {
namespace {

constexpr std::string_view kFormatName = "metrics-snapshot";
constexpr std::int64_t kFormatVersion = 1;
constexpr std::string_view kLogMagic = "MTRCWAL1";
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

core::Metric decode_metric(simdjson::dom::element el, std::size_t index) {
  const auto where = [index](std::string_view what) {
    return std::runtime_error("metric #" + std::to_string(index) + ": " + std::string(what));
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
  if (*type == core::MetricType::counter) {
    std::int64_t delta = 0;
    if (obj["delta"].get_int64().get(delta)) throw where("counter without an int64 \"delta\"");
    return core::Metric::counter(std::string(id), delta);
  }
  double value = 0;
  if (obj["value"].get_double().get(value)) throw where("gauge without a numeric \"value\"");
  return core::Metric::gauge(std::string(id), value);
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

}  // namespace

std::string encode_snapshot(std::span<const core::Metric> metrics,
                            std::optional<std::uint64_t> log_id, std::uint64_t seq) {
  std::string out;
  out.reserve(128 + metrics.size() * 48);
  out += "{\"format\":\"";
  out += kFormatName;
  out += "\",\"version\":";
  out += std::to_string(kFormatVersion);
  if (log_id) {
    out += ",\"log_id\":\"";
    out += hex64(*log_id);
    out += "\",\"seq\":";
    out += std::to_string(seq);
  }
  out += ",\"metrics\":[";
  bool first = true;
  for (const auto& m : metrics) {
    out += first ? "\n" : ",\n";
    first = false;
    out += "{\"id\":";
    core::append_json_string(out, m.id);
    if (m.type == core::MetricType::counter) {
      out += ",\"type\":\"counter\",\"delta\":";
      out += std::to_string(m.delta);
    } else {
      out += ",\"type\":\"gauge\",\"value\":";
      append_double(out, m.value);
    }
    out += '}';
  }
  out += "\n]}\n";
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
  if (root.is_array()) {
    metrics = root.get_array().value_unsafe();  // the Go server's format: a bare array
  } else {
    simdjson::dom::object obj;
    if (root.get_object().get(obj)) throw std::runtime_error("neither an object nor an array");
    std::string_view format;
    if (obj["format"].get_string().get(format) || format != kFormatName) {
      throw std::runtime_error("not a metrics snapshot (\"format\" is not \"metrics-snapshot\")");
    }
    std::int64_t version = 0;
    if (obj["version"].get_int64().get(version) || version != kFormatVersion) {
      throw std::runtime_error("unsupported snapshot version (this program reads version 1)");
    }
    if (obj["metrics"].get_array().get(metrics)) {
      throw std::runtime_error("missing \"metrics\" array");
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
    snap.metrics.push_back(decode_metric(el, index++));
  return snap;
}

std::string encode_log_header(std::uint64_t log_id) {
  std::string out(kLogMagic);
  put_u64(out, log_id);
  return out;
}

std::optional<std::uint64_t> decode_log_header(std::string_view data) {
  if (data.size() < kLogHeaderSize) {
    if (kLogMagic.substr(0, data.size()) != data.substr(0, kLogMagic.size())) {
      throw std::runtime_error("not a metrics write-ahead log (bad magic)");
    }
    return std::nullopt;
  }
  if (data.substr(0, kLogMagic.size()) != kLogMagic) {
    throw std::runtime_error("not a metrics write-ahead log (bad magic)");
  }
  return get_le(data, kLogMagic.size(), 8);
}

void append_log_record(std::string& out, std::uint64_t log_id, std::uint64_t seq,
                       std::span<const core::Metric> metrics) {
  const auto start = out.size();
  put_u32(out, 0);  // length and crc, filled in below
  put_u32(out, 0);
  put_u64(out, seq);
  put_u32(out, static_cast<std::uint32_t>(metrics.size()));
  for (const auto& m : metrics) {
    // Names are validated to 255 bytes long before they get here; a longer
    // one would not fit its u16 length and must not corrupt the record.
    if (m.id.size() > 0xffff) throw std::length_error("metric name too long for the log");
    out.push_back(static_cast<char>(m.type));
    put_u16(out, static_cast<std::uint16_t>(m.id.size()));
    out += m.id;
    put_u64(out, m.type == core::MetricType::counter ? static_cast<std::uint64_t>(m.delta)
                                                     : std::bit_cast<std::uint64_t>(m.value));
  }
  const auto payload = out.size() - start - kLogRecordHeaderSize;
  set_u32(out, start, static_cast<std::uint32_t>(payload));
  // The checksum covers seq and payload, so a stale or torn record is detected.
  set_u32(out, start + 4, crc_of(log_id, std::string_view(out).substr(start + 8)));
}

ReplayResult replay_log(std::string_view records, std::uint64_t log_id, std::uint64_t min_seq,
                        const std::function<void(core::Metric)>& apply) {
  ReplayResult result;
  std::size_t pos = 0;
  std::uint64_t prev_seq = 0;
  std::vector<core::Metric> decoded;
  while (records.size() - pos >= kLogRecordHeaderSize) {
    const auto len = static_cast<std::uint32_t>(get_le(records, pos, 4));
    const auto crc = static_cast<std::uint32_t>(get_le(records, pos + 4, 4));
    const auto seq = get_le(records, pos + 8, 8);
    if (len > kMaxRecordPayload || records.size() - pos - kLogRecordHeaderSize < len) break;
    if (crc_of(log_id, records.substr(pos + 8, 8 + len)) != crc) break;
    if (result.records > 0 && seq <= prev_seq) break;
    // Decode fully before applying anything, so a malformed record changes nothing.
    const auto payload = records.substr(pos + kLogRecordHeaderSize, len);
    decoded.clear();
    bool ok = payload.size() >= 4;
    std::size_t at = 4;
    const auto count = ok ? get_le(payload, 0, 4) : 0;
    for (std::uint64_t i = 0; ok && i < count; ++i) {
      if (payload.size() - at < 3) {
        ok = false;
        break;
      }
      const auto type = static_cast<unsigned char>(payload[at]);
      const auto name_len = static_cast<std::size_t>(get_le(payload, at + 1, 2));
      at += 3;
      if (type > 1 || payload.size() - at < name_len + 8) {
        ok = false;
        break;
      }
      std::string name(payload.substr(at, name_len));
      at += name_len;
      const auto bits = get_le(payload, at, 8);
      at += 8;
      decoded.push_back(
          type == 1 ? core::Metric::counter(std::move(name), static_cast<std::int64_t>(bits))
                    : core::Metric::gauge(std::move(name), std::bit_cast<double>(bits)));
    }
    if (!ok || at != payload.size()) {
      throw std::runtime_error("write-ahead log record " + std::to_string(seq) +
                               " has a valid checksum but a malformed body");
    }
    if (seq > min_seq) {
      for (auto& m : decoded)
        apply(std::move(m));
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
