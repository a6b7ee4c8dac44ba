// Fuzzes the file storage's loaders: the JSON snapshot, the write-ahead log
// header and record replay (src/storage/src/detail/file_format.*), and a
// FileRepository restoring from such files.
// Properties: the parsers throw only std::runtime_error (their documented
// error) and FileRepository only core::Error; a decoded snapshot re-encodes
// to one that decodes the same; replay applies only well-formed records.
//
// Input: byte 0 picks the mode, bytes 1-8 a log id for replay; the rest is
// the file content. In mode 3 the rest is split at the first "\n--wal--\n"
// into a snapshot and a log file.
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

bool same(const core::Metric& a, const core::Metric& b) {
  return a.id == b.id && a.type == b.type && a.delta == b.delta &&
         std::bit_cast<std::uint64_t>(a.value) == std::bit_cast<std::uint64_t>(b.value);
}

void snapshot_mode(std::string_view text) {
  detail::Snapshot snap;
  try {
    snap = detail::decode_snapshot(text);
  } catch (const std::runtime_error&) {
    return;
  }
  for (const auto& m : snap.metrics)
    FUZZ_CHECK(!core::validate_name(m.id));
  const auto again =
      detail::decode_snapshot(detail::encode_snapshot(snap.metrics, snap.log_id, snap.seq));
  FUZZ_CHECK(again.log_id == snap.log_id);
  FUZZ_CHECK(!snap.log_id || again.seq == snap.seq);
  FUZZ_CHECK(again.metrics.size() == snap.metrics.size());
  for (std::size_t i = 0; i < snap.metrics.size(); ++i)
    FUZZ_CHECK(same(again.metrics[i], snap.metrics[i]));
}

void log_mode(std::string_view text, std::uint64_t log_id) {
  try {
    (void)detail::decode_log_header(text);
  } catch (const std::runtime_error&) {
  }
  std::vector<core::Metric> applied;
  detail::ReplayResult result;
  try {
    result = detail::replay_log(text, log_id, 0,
                                [&](core::Metric m) { applied.push_back(std::move(m)); });
  } catch (const std::runtime_error&) {
    return;
  }
  FUZZ_CHECK(result.ignored_bytes <= text.size());
  // Re-encoding what was replayed as one record replays to the same values.
  std::string log;
  detail::append_log_record(log, log_id, 1, applied);
  std::vector<core::Metric> again;
  const auto second =
      detail::replay_log(log, log_id, 0, [&](core::Metric m) { again.push_back(std::move(m)); });
  FUZZ_CHECK(second.records == 1 && !second.torn && second.ignored_bytes == 0);
  bool fits = true;  // names longer than 65535 bytes do not fit a record
  for (const auto& m : applied)
    fits = fits && m.id.size() <= 0xffff;
  if (fits) {
    FUZZ_CHECK(again.size() == applied.size());
    for (std::size_t i = 0; i < applied.size(); ++i)
      FUZZ_CHECK(same(again[i], applied[i]));
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
    case 2:
      log_mode(text, log_id);
      break;
    default:
      repository_mode(text);
      break;
  }
  return 0;
}
