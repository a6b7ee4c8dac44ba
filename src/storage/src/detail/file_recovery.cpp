#include "detail/file_recovery.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "detail/file_format.hpp"
#include "detail/unique_fd.hpp"
#include "metrics/core/errors.hpp"

namespace metrics::storage::detail {

std::uint64_t recover(const std::filesystem::path& path, const std::filesystem::path& log_path,
                      MemoryRepository& mem, KeyStore& keys) {
  std::string text;
  Snapshot snap;
  try {
    if (read_file_if_exists(path, text)) snap = decode_snapshot(text);
  } catch (const std::system_error& e) {
    throw core::Error("file storage: cannot read " + path.string() + ": " + e.code().message());
  } catch (const std::exception& e) {
    throw core::Error("file storage: cannot parse " + path.string() + ": " + e.what());
  }
  std::unordered_map<core::MetricKey, core::Point, core::MetricKeyHash> classic;
  std::unordered_map<core::SeriesKey, core::Point, core::SeriesHash, core::SeriesEqual> series;
  for (auto& p : snap.classic) {
    core::MetricKey key{p.type, p.id};
    classic.insert_or_assign(std::move(key), std::move(p));
  }
  for (auto& p : snap.series) {
    auto key = core::SeriesKey::of(p);
    series.insert_or_assign(std::move(key), std::move(p));
  }
  std::vector<KeyRecord> key_records = std::move(snap.keys);
  const auto apply = [&](LogChange c) {
    switch (c.kind) {
      case LogChange::Kind::classic: {
        core::MetricKey key{c.point.type, c.point.id};
        classic.insert_or_assign(std::move(key), std::move(c.point));
        break;
      }
      case LogChange::Kind::series: {
        auto key = core::SeriesKey::of(c.point);
        series.insert_or_assign(std::move(key), std::move(c.point));
        break;
      }
      case LogChange::Kind::removed:
        if (auto it = series.find(core::SeriesView(c.point)); it != series.end()) series.erase(it);
        break;
      case LogChange::Kind::key:
        key_records.push_back(c.key);
        break;
    }
  };
  std::uint64_t last_seq = snap.seq;
  if (snap.log_id) {
    try {
      if (read_file_if_exists(log_path, text)) {
        const auto header = decode_log_header(text);
        if (header && header->log_id == *snap.log_id) {
          const auto replay =
              replay_log(std::string_view(text).substr(kLogHeaderSize), *header, snap.seq, apply);
          last_seq = std::max(last_seq, replay.last_seq);
          spdlog::info("file storage: replayed {} log records from {}", replay.records,
                       log_path.string());
          if (replay.torn) {
            // Unused space holds zeros, or records of an earlier log (the
            // file is reused), or the torn last write of a crash.
            spdlog::info("file storage: replay of {} stopped {} bytes before its end",
                         log_path.string(), replay.ignored_bytes);
          }
        }
      }
    } catch (const std::system_error& e) {
      throw core::Error("file storage: cannot read " + log_path.string() + ": " +
                        e.code().message());
    } catch (const std::exception& e) {
      throw core::Error("file storage: cannot parse " + log_path.string() + ": " + e.what());
    }
  }
  std::vector<core::Point> classic_values;
  classic_values.reserve(classic.size());
  for (auto& [key, p] : classic)
    classic_values.push_back(std::move(p));
  std::vector<core::Point> series_values;
  series_values.reserve(series.size());
  for (auto& [key, p] : series)
    series_values.push_back(std::move(p));
  mem.reset(classic_values, series_values);
  keys.load(key_records);
  spdlog::info(
      "file storage: restored {} classic values, {} series and {} idempotency keys from {}",
      classic_values.size(), series_values.size(), key_records.size(), path.string());
  return last_seq;
}

}  // namespace metrics::storage::detail
