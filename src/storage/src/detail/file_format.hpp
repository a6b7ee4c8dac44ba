// The on-disk formats of the file storage (described in docs/STORAGE.md):
//
// * the snapshot, readable JSON, version 2:
//     {"format":"metrics-snapshot","version":2,"log_id":"<16 hex>","seq":N,
//      "metrics":[{"id":"Alloc","type":"gauge","value":1.5}, ...],
//      "series":[{"id":"Alloc","type":"gauge","labels":{"job":"a"},"value":1.5,
//                 "timestamp_ms":1700000000000}, ...]}
//   "metrics" holds the classic values, "series" every series (the
//   unlabelled ones with "labels":{}). Version 3 (written only when there
//   are idempotency keys, so that a file without any stays readable by
//   older servers) adds "idempotency_keys":[{"key":"<32 hex>","body":"<32
//   hex>","ms":N}, ...]: the applied keys, oldest first. Version 1 (the same without
//   "series") and a bare JSON array of metrics (the Go server's, version 0)
//   still load: their metrics become classic values and the unlabelled
//   series, with timestamp 0;
// * the write-ahead log that sits beside it in synchronous mode: a 16-byte
//   header (magic + log id) and checksummed records, each holding what a
//   group commit changed: the series and classic values as stored after it,
//   and the series it removed (expiry), and (version 3, MTRCWAL3) the
//   idempotency keys of the batches it applied. Logs of version 2 (no keys)
//   and of version 1 (magic MTRCWAL1,
//   classic values only) still replay, like version 1 snapshots.
//
//   auto text = encode_snapshot(mem.list_now(), mem.list_series_now(), log_id, seq);
//   Snapshot snap = decode_snapshot(text);  // throws std::runtime_error
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
#include "metrics/storage/idempotency.hpp"

namespace metrics::storage::detail {

struct Snapshot {
  std::vector<core::Point> classic;
  std::vector<core::Point> series;
  // The log whose records continue this snapshot; none: ignore any log.
  std::optional<std::uint64_t> log_id;
  // Records of that log with seq <= this are already in the snapshot.
  std::uint64_t seq = 0;
  // The version read (0 to 3).
  int version = 2;
  // Version 3: the idempotency keys applied, oldest first.
  std::vector<KeyRecord> keys;
};

[[nodiscard]] std::string encode_snapshot(std::span<const core::Point> classic,
                                          std::span<const core::Point> series,
                                          std::optional<std::uint64_t> log_id, std::uint64_t seq,
                                          std::span<const KeyRecord> keys = {});
// Throws std::runtime_error saying what is wrong with the text.
[[nodiscard]] Snapshot decode_snapshot(std::string_view json);

inline constexpr std::size_t kLogHeaderSize = 16;
inline constexpr std::size_t kLogRecordHeaderSize = 16;  // length, crc32, seq

struct LogHeader {
  std::uint64_t log_id = 0;
  int version = 3;
};

// The header of a new log (always the current version).
[[nodiscard]] std::string encode_log_header(std::uint64_t log_id);
// nullopt when the header is incomplete (a crash while the log was being
// created); throws std::runtime_error when it is not a log of ours.
[[nodiscard]] std::optional<LogHeader> decode_log_header(std::string_view data);

// Appends one record of log `log_id` (current version): after commit `seq`,
// the values `series` and `classic` hold, and the series `removed` that
// are gone. Throws std::length_error for a name longer than 65535 bytes.
void append_log_record(std::string& out, std::uint64_t log_id, std::uint64_t seq,
                       std::span<const core::Point> series, std::span<const core::Point> classic,
                       std::span<const core::SeriesKey> removed = {},
                       std::span<const KeyRecord> keys = {});

// One change a log record holds.
struct LogChange {
  enum class Kind : std::uint8_t { series = 0, classic = 1, removed = 2, key = 3 };
  Kind kind = Kind::series;
  // series: the series as stored; classic: the classic value (no labels);
  // removed: the key of the series removed (no value).
  core::Point point;
  // key: the idempotency key applied in the record (version 3).
  KeyRecord key{};
  friend bool operator==(const LogChange&, const LogChange&) = default;
};

struct ReplayResult {
  std::uint64_t last_seq = 0;
  std::size_t records = 0;
  std::size_t ignored_bytes = 0;  // after the last good record, not replayed
  bool torn = false;              // some of them are not preallocation zeros
};
// Replays the records of log `header` that follow the header, in order,
// stopping at the first one that is incomplete, fails its checksum (which
// covers the log id: records of an earlier log in a reused file fail it) or
// does not have a larger seq than the one before. Records with
// seq <= min_seq are skipped. `apply` receives each change in record order
// (a version 1 record's metric as its classic value, then its unlabelled
// series with timestamp 0).
ReplayResult replay_log(std::string_view records, const LogHeader& header, std::uint64_t min_seq,
                        const std::function<void(LogChange)>& apply);

}  // namespace metrics::storage::detail
