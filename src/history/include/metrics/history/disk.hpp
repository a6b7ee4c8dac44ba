// The history dir: a HistoryStore written to disk and read back at start.
// Closed chunks are appended to segment files (segment-NNNNNN.hist, a new
// one each start and every segment_bytes); the open chunks are rewritten
// as checkpoint.hist (to a temporary file, fsync, rename) at every flush().
// Each file starts with an 8-byte magic and version; each record is
// u32 length | u32 CRC-32C | payload (docs/HISTORY.md has the layout).
//
//   history::HistoryOptions options;
//   options.track_closed = true;                        // required
//   history::HistoryStore store(options);
//   history::HistoryDir dir({.dir = "/tmp/metrics-history", .log = log});  // locks it
//   const auto report = dir.load(store);                // before the first append
//   ... appends ...; every few seconds, on a background thread:
//   dir.flush(store);                                  // or dir.start(store)
//
// load() never stops on a bad file: a file with a wrong magic, a truncated
// or corrupt record is reported by name in the LoadReport (and the log),
// what came before the bad record is kept, and the file is left in place
// (a bad checkpoint is renamed to checkpoint.hist.bad-N first, so the next
// flush does not overwrite it). A second HistoryDir on the same folder (in
// any process) fails with a message naming the holder's pid (flock).
//
// A crash loses the samples appended since the last flush(): the open
// chunks' growth since the checkpoint and the chunks closed since then.
//
// Thread-safety: load() once before anything else; flush() from one thread
// at a time, concurrently with the store's appends and reads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "metrics/history/store.hpp"

namespace metrics::history {

struct HistoryDirOptions {
  std::filesystem::path dir;
  std::function<void(std::string_view)> log;
  // A segment past this size is closed and the next flush starts another.
  std::size_t segment_bytes = std::size_t{64} << 20;
  // start(): flush this often on a background thread (and once more at
  // stop()). What a crash loses is at most this much of the newest samples.
  std::chrono::milliseconds flush_interval{std::chrono::seconds{10}};
  std::shared_ptr<core::Clock> clock;  // default core::real_clock()
  // load(): the ref a stored series gets in this run, for a caller whose
  // refs are not stable across restarts (unset: the stored ref); nullopt
  // leaves the series out (counted as skipped).
  std::function<std::optional<SeriesRef>(const SeriesIdentity&, SeriesRef stored)> map_ref;
};

struct LoadReport {
  std::size_t files = 0;
  std::size_t chunks = 0;  // restored
  std::size_t samples = 0;
  std::size_t skipped_chunks = 0;     // valid records not restored (stale checkpoint, duplicates)
  std::vector<std::string> problems;  // one line per bad file, naming it
};

// The folder is locked by another process (or another HistoryDir).
class HistoryDirLocked : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class HistoryDir {
 public:
  // Creates the folder if needed and locks it; throws HistoryDirLocked, or
  // std::runtime_error when it cannot be created or opened.
  explicit HistoryDir(HistoryDirOptions options);
  ~HistoryDir();
  HistoryDir(const HistoryDir&) = delete;
  HistoryDir& operator=(const HistoryDir&) = delete;

  // Reads every segment (oldest first), then the checkpoint, into `store`.
  // Throws std::invalid_argument when the store was built without
  // track_closed (flush() too).
  LoadReport load(HistoryStore& store);

  // Appends the chunks closed since the last flush to the current segment,
  // rewrites the checkpoint of the open chunks, fsyncs both, and removes the
  // segments whose every sample is older than the store's retention (each
  // removal logged). Throws std::runtime_error on an I/O error.
  void flush(HistoryStore& store);

  // Flushes `store` every flush_interval on a background thread (errors are
  // logged, and the next round tries again) until stop(), which flushes a
  // last time. `store` must outlive stop(); the destructor calls stop().
  void start(HistoryStore& store);
  void stop();

  [[nodiscard]] const std::filesystem::path& dir() const noexcept { return options_.dir; }

 private:
  void say(const std::string& line) const;
  void open_segment();

  HistoryDirOptions options_;
  int lock_fd_ = -1;
  std::mutex mu_;  // flush() against flush()
  int segment_fd_ = -1;
  std::uint64_t segment_number_ = 0;
  std::size_t segment_size_ = 0;
  // Each segment's newest sample (for retention), by number.
  std::map<std::uint64_t, std::int64_t> segment_max_t_;

  HistoryStore* background_store_ = nullptr;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread flusher_;
};

// CRC-32C (Castagnoli) of `data`, as the records carry it.
[[nodiscard]] std::uint32_t crc32c(std::string_view data) noexcept;

}  // namespace metrics::history
