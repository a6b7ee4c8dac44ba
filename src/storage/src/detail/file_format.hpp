// The on-disk formats of the file storage (described in docs/STORAGE.md):
//
// * the snapshot, readable JSON:
//     {"format":"metrics-snapshot","version":1,"log_id":"<16 hex>","seq":N,
//      "metrics":[{"id":"Alloc","type":"gauge","value":1.5}, ...]}
//   (a bare JSON array of metrics, as the Go server wrote, is read as version 0);
// * the write-ahead log that sits beside it in synchronous mode: a 16-byte
//   header (magic + log id) and checksummed records, each holding the values
//   of the metrics a group commit changed, as stored after it.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/core/metric.hpp"

namespace metrics::storage::detail {

struct Snapshot {
  std::vector<core::Metric> metrics;
  // The log whose records continue this snapshot; none: ignore any log.
  std::optional<std::uint64_t> log_id;
  // Records of that log with seq <= this are already in the snapshot.
  std::uint64_t seq = 0;
};

[[nodiscard]] std::string encode_snapshot(std::span<const core::Metric> metrics,
                                          std::optional<std::uint64_t> log_id, std::uint64_t seq);
// Throws std::runtime_error saying what is wrong with the text.
[[nodiscard]] Snapshot decode_snapshot(std::string_view json);

inline constexpr std::size_t kLogHeaderSize = 16;
inline constexpr std::size_t kLogRecordHeaderSize = 16;  // length, crc32, seq

[[nodiscard]] std::string encode_log_header(std::uint64_t log_id);
// nullopt when the header is incomplete (a crash while the log was being
// created); throws std::runtime_error when it is not a log of ours.
[[nodiscard]] std::optional<std::uint64_t> decode_log_header(std::string_view data);

// Appends one record of log `log_id`: the values `metrics` hold after commit
// `seq`. Throws std::length_error for a name longer than 65535 bytes.
void append_log_record(std::string& out, std::uint64_t log_id, std::uint64_t seq,
                       std::span<const core::Metric> metrics);

struct ReplayResult {
  std::uint64_t last_seq = 0;
  std::size_t records = 0;
  std::size_t ignored_bytes = 0;  // after the last good record, not replayed
  bool torn = false;              // some of them are not preallocation zeros
};
// Replays the records of log `log_id` that follow the header, in order,
// stopping at the first one that is incomplete, fails its checksum (which
// covers the log id: records of an earlier log in a reused file fail it) or
// does not have a larger seq than the one before. Records with
// seq <= min_seq are skipped. `apply` receives each stored value.
ReplayResult replay_log(std::string_view records, std::uint64_t log_id, std::uint64_t min_seq,
                        const std::function<void(core::Metric)>& apply);

}  // namespace metrics::storage::detail
