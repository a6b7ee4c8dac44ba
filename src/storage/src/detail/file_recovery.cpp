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
                      MemoryRepository& mem) {
  std::string text;
  Snapshot snap;
  try {
    if (read_file_if_exists(path, text)) snap = decode_snapshot(text);
  } catch (const std::system_error& e) {
    throw core::Error("file storage: cannot read " + path.string() + ": " + e.code().message());
  } catch (const std::exception& e) {
    throw core::Error("file storage: cannot parse " + path.string() + ": " + e.what());
  }
  std::unordered_map<core::MetricKey, core::Metric, core::MetricKeyHash> state;
  for (auto& m : snap.metrics) {
    core::MetricKey key{m.type, m.id};
    state.insert_or_assign(std::move(key), std::move(m));
  }
  std::uint64_t last_seq = snap.seq;
  if (snap.log_id) {
    try {
      if (read_file_if_exists(log_path, text)) {
        const auto id = decode_log_header(text);
        if (id && *id == *snap.log_id) {
          const auto replay = replay_log(std::string_view(text).substr(kLogHeaderSize), *id,
                                         snap.seq, [&state](core::Metric m) {
                                           core::MetricKey key{m.type, m.id};
                                           state.insert_or_assign(std::move(key), std::move(m));
                                         });
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
  std::vector<core::Metric> metrics;
  metrics.reserve(state.size());
  for (auto& [key, m] : state)
    metrics.push_back(std::move(m));
  mem.reset(metrics);
  spdlog::info("file storage: restored {} metrics from {}", metrics.size(), path.string());
  return last_seq;
}

}  // namespace metrics::storage::detail
