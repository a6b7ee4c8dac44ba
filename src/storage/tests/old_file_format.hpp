// The file storage's version 1 files (before series), written byte for byte
// as the version 1 writer wrote them, so that tests can check that they
// still load: a snapshot without "series", and a log with magic MTRCWAL1
// whose records hold (type, name, value bits) per metric.
//
//   std::string log = old_format::log_header(id);
//   old_format::append_record(log, id, 1, {core::Point::counter("c", 5)});
//
// Pure functions; thread-safe.
#pragma once

#include <zlib.h>

#include <bit>
#include <cstdint>
#include <string>
#include <vector>

#include "metrics/core/metric.hpp"

namespace metrics::storage::testing::old_format {

inline void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

inline std::string log_header(std::uint64_t log_id) {
  std::string out = "MTRCWAL1";
  put_le(out, log_id, 8);
  return out;
}

// u32 length, u32 crc32 (over the log id, seq and payload), u64 seq, then
// u32 count and per metric u8 type, u16 name length, the name, u64 bits.
inline void append_record(std::string& out, std::uint64_t log_id, std::uint64_t seq,
                          const std::vector<core::Point>& metrics) {
  std::string body;
  put_le(body, seq, 8);
  put_le(body, metrics.size(), 4);
  for (const auto& m : metrics) {
    body.push_back(static_cast<char>(m.type));
    put_le(body, m.id.size(), 2);
    body += m.id;
    put_le(body,
           m.type == core::MetricType::counter ? static_cast<std::uint64_t>(m.total)
                                               : std::bit_cast<std::uint64_t>(m.value),
           8);
  }
  std::string id;
  put_le(id, log_id, 8);
  auto crc = ::crc32(0L, reinterpret_cast<const Bytef*>(id.data()), static_cast<uInt>(id.size()));
  crc = ::crc32(crc, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()));
  put_le(out, body.size() - 8, 4);
  put_le(out, crc, 4);
  out += body;
}

}  // namespace metrics::storage::testing::old_format
