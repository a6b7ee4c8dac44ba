// Fuzzes the file storage's loaders: the JSON snapshot, the write-ahead log
// header and record replay (src/storage/src/detail/file_format.*), and a
// FileRepository restoring from such files.
// Properties: the parsers throw only std::runtime_error (their documented
// error) and FileRepository only core::Error; a decoded snapshot (any
// version) re-encodes to a version 2 one that decodes the same, series
// labels and timestamps included; replay applies only well-formed records,
// and what it applied re-encodes as one version 2 record that replays the
// same.
//
// Input: byte 0 picks the mode, bytes 1-8 a log id for replay; the rest is
// the file content. Mode 1 replays it as records of a version 1 log; mode 2
// reads a log header first (its version picks the record format; without
// one, version 2 records follow). In mode 3 the rest is split at the first
// "\n--wal--\n" into a snapshot and a log file.
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "detail/file_format.hpp"
#include "fuzz_check.hpp"
#include "metrics/core/errors.hpp"
#include "metrics/storage/file_repository.hpp"

namespace {

namespace core = metrics::core;
namespace storage = metrics::storage;
namespace detail = metrics::storage::detail;

bool same(const core::Point& a, const core::Point& b) {
  return a.id == b.id && a.type == b.type && a.labels == b.labels && a.total == b.total &&
         a.timestamp_ms == b.timestamp_ms &&
         std::bit_cast<std::uint64_t>(a.value) == std::bit_cast<std::uint64_t>(b.value);
}

void same_points(const std::vector<core::Point>& a, const std::vector<core::Point>& b) {
  FUZZ_CHECK(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    FUZZ_CHECK(same(a[i], b[i]));
}

void snapshot_mode(std::string_view text) {
  detail::Snapshot snap;
  try {
    snap = detail::decode_snapshot(text);
  } catch (const std::runtime_error&) {
    return;
  }
  for (const auto& m : snap.classic) {
    FUZZ_CHECK(!core::validate_name(m.id));
    FUZZ_CHECK(m.labels.empty() && m.timestamp_ms == 0);
  }
  for (const auto& m : snap.series)
    FUZZ_CHECK(!core::validate_name(m.id));
  // Before version 2 every value is also its unlabelled series.
  if (snap.version < 2) same_points(snap.series, snap.classic);
  const auto again = detail::decode_snapshot(
      detail::encode_snapshot(snap.classic, snap.series, snap.log_id, snap.seq));
  FUZZ_CHECK(again.version == 2);
  FUZZ_CHECK(again.log_id == snap.log_id);
  FUZZ_CHECK(!snap.log_id || again.seq == snap.seq);
  same_points(again.classic, snap.classic);
  same_points(again.series, snap.series);
}

using Kind = detail::LogChange::Kind;

void log_mode(std::string_view text, std::uint64_t log_id, bool read_header) {
  detail::LogHeader header{log_id, 1};
  if (read_header) {
    header.version = 2;
    try {
      if (auto h = detail::decode_log_header(text)) {
        FUZZ_CHECK(h->version == 1 || h->version == 2);
        header.version = h->version;
        text.remove_prefix(detail::kLogHeaderSize);
      }
    } catch (const std::runtime_error&) {
    }
  }
  std::vector<detail::LogChange> applied;
  detail::ReplayResult result;
  try {
    result = detail::replay_log(text, header, 0,
                                [&](detail::LogChange c) { applied.push_back(std::move(c)); });
  } catch (const std::runtime_error&) {
    return;
  }
  FUZZ_CHECK(result.ignored_bytes <= text.size());
  // Re-encoding what was replayed as one version 2 record replays to the
  // same changes, grouped by kind: removals, classic values, series.
  std::vector<core::SeriesKey> removed;
  std::vector<core::Point> classic;
  std::vector<core::Point> series;
  std::vector<detail::LogChange> want;
  for (const auto kind : {Kind::removed, Kind::classic, Kind::series}) {
    for (const auto& c : applied) {
      if (c.kind != kind) continue;
      want.push_back(c);
      if (kind == Kind::removed) removed.push_back(core::SeriesKey::of(c.point));
      if (kind == Kind::classic) classic.push_back(c.point);
      if (kind == Kind::series) series.push_back(c.point);
      if (kind != Kind::series) FUZZ_CHECK(c.point.timestamp_ms == 0);
      if (kind == Kind::classic) FUZZ_CHECK(c.point.labels.empty());
    }
  }
  std::string log;
  detail::append_log_record(log, log_id, 1, series, classic, removed);
  std::vector<detail::LogChange> again;
  const auto second =
      detail::replay_log(log, detail::LogHeader{log_id, 2}, 0,
                         [&](detail::LogChange c) { again.push_back(std::move(c)); });
  FUZZ_CHECK(second.records == 1 && !second.torn && second.ignored_bytes == 0);
  FUZZ_CHECK(again.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    FUZZ_CHECK(again[i].kind == want[i].kind);
    FUZZ_CHECK(same(again[i].point, want[i].point));
  }
}

const std::filesystem::path& work_dir() {
  static const std::filesystem::path dir = [] {
    std::string templ = (std::filesystem::temp_directory_path() / "fuzz_file_XXXXXX").string();
    FUZZ_CHECK(::mkdtemp(templ.data()) != nullptr);
    remove_at_exit(templ);
    return std::filesystem::path(templ);
  }();
  return dir;
}

void write_file(const std::filesystem::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
}

void repository_mode(std::string_view text) {
  std::string_view wal;
  bool with_wal = false;
  if (auto at = text.find("\n--wal--\n"); at != std::string_view::npos) {
    wal = text.substr(at + 9);
    text = text.substr(0, at);
    with_wal = true;
  }
  const auto path = work_dir() / "db.json";
  std::filesystem::remove(path);
  std::filesystem::remove(storage::FileRepository::log_path(path));
  write_file(path, text);
  if (with_wal) write_file(storage::FileRepository::log_path(path), wal);
  try {
    storage::FileRepository repo({.path = path,
                                  .store_interval = std::chrono::hours{1},
                                  .restore = true,
                                  .max_queue = 16,
                                  .compact_log_bytes = 1u << 20});
    (void)storage::list_sync(repo);
    (void)storage::list_series_sync(repo);
  } catch (const core::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool quiet = [] {
    spdlog::set_level(spdlog::level::off);
    return true;
  }();
  (void)quiet;
  if (size < 9) return 0;
  std::uint64_t log_id = 0;
  std::memcpy(&log_id, data + 1, sizeof log_id);
  const std::string_view text(reinterpret_cast<const char*>(data + 9), size - 9);
  switch (data[0] % 4) {
    case 0:
      snapshot_mode(text);
      break;
    case 1:
      log_mode(text, log_id, false);
      break;
    case 2:
      log_mode(text, log_id, true);
      break;
    default:
      repository_mode(text);
      break;
  }
  return 0;
}
