#include "metrics/storage/file_repository.hpp"

#include "detail/complete.hpp"
#include "detail/file_mode.hpp"
#include "detail/file_recovery.hpp"
#include "detail/interval_snapshots.hpp"
#include "detail/write_ahead_log.hpp"
#include "metrics/core/errors.hpp"
#include "metrics/storage/memory_repository.hpp"

namespace metrics::storage {

using detail::complete;

// Restores the files, owns the memory and serves the reads; the writes go to
// the mode the interval picks.
class FileRepository::Impl {
 public:
  Impl(FileOptions options, KeyStore& keys) : opt_(std::move(options)) {
    if (opt_.path.empty()) throw core::Error("file storage: empty file path");
    if (!opt_.clock) opt_.clock = core::real_clock();
    std::uint64_t last_seq = 0;
    if (opt_.restore) last_seq = detail::recover(opt_.path, log_path(opt_.path), mem_, keys);
    if (opt_.store_interval.count() == 0) {
      mode_ = std::make_unique<detail::WriteAheadLog>(opt_, mem_, keys, last_seq);
    } else {
      mode_ = std::make_unique<detail::IntervalSnapshots>(opt_, mem_, keys);
    }
  }

  void apply(std::vector<core::Update> batch, std::int64_t received_ms, Callback<Applied> done) {
    mode_->apply(std::move(batch), received_ms, std::move(done));
  }

  void apply_once(std::vector<core::Update> batch, std::int64_t received_ms, const Guard& guard,
                  Callback<Applied> done) {
    mode_->apply_once(std::move(batch), received_ms, guard, std::move(done));
  }

  void expire(std::int64_t cutoff_ms, Callback<std::vector<core::SeriesKey>> done) {
    mode_->expire(cutoff_ms, std::move(done));
  }

  void get(const core::SeriesKey& key, const Callback<std::optional<core::Point>>& done) {
    complete(done, nullptr, mem_.get_now(key));
  }

  void get_classic(const core::MetricKey& key, const Callback<std::optional<core::Point>>& done) {
    complete(done, nullptr, mem_.get_classic_now(key));
  }

  void list(const Callback<std::vector<core::Point>>& done) {
    complete(done, nullptr, mem_.list_now());
  }

  void list_series(const Callback<std::vector<core::Point>>& done) {
    complete(done, nullptr, mem_.list_series_now());
  }

  [[nodiscard]] Health health() const {
    if (mode_->healthy()) return {};
    return {.ok = false, .reason = "the last write to the storage file failed"};
  }

  void close() { mode_->close(); }
  [[nodiscard]] StorageStats stats() const { return mode_->stats(); }

 private:
  FileOptions opt_;
  MemoryRepository mem_;
  std::unique_ptr<detail::FileMode> mode_;  // last: stopped before the memory goes
};

FileRepository::FileRepository(FileOptions options)
    : impl_(std::make_unique<Impl>(std::move(options), keys_)) {}

FileRepository::~FileRepository() {
  impl_->close();
}

void FileRepository::apply(std::vector<core::Update> batch, std::int64_t received_ms,
                           Callback<Applied> done) {
  impl_->apply(std::move(batch), received_ms, std::move(done));
}

void FileRepository::apply_once(std::vector<core::Update> batch, std::int64_t received_ms,
                                Guard guard, Callback<OnceApplied> done) {
  if (!begin_once(batch, received_ms, guard, done)) return;
  impl_->apply_once(std::move(batch), received_ms, guard,
                    finish_once(guard, received_ms, std::move(done)));
}

void FileRepository::get(core::SeriesKey key, Callback<std::optional<core::Point>> done) {
  impl_->get(key, done);
}

void FileRepository::get_classic(core::MetricKey key, Callback<std::optional<core::Point>> done) {
  impl_->get_classic(key, done);
}

void FileRepository::list(Callback<std::vector<core::Point>> done) {
  impl_->list(done);
}

void FileRepository::list_series(Callback<std::vector<core::Point>> done) {
  impl_->list_series(done);
}

void FileRepository::expire(std::int64_t cutoff_ms, Callback<std::vector<core::SeriesKey>> done) {
  impl_->expire(cutoff_ms, std::move(done));
}

void FileRepository::ping(Callback<bool> done) {
  const auto h = impl_->health();
  if (h.ok) {
    complete(done, nullptr, true);
  } else {
    complete(done, std::make_exception_ptr(core::StorageUnavailable(h.reason)), false);
  }
}

void FileRepository::health(Callback<Health> done) {
  complete(done, nullptr, impl_->health());
}

StorageStats FileRepository::stats() const {
  return impl_->stats();
}

void FileRepository::close() {
  impl_->close();
}

std::filesystem::path FileRepository::log_path(const std::filesystem::path& path) {
  auto out = path;
  out += ".wal";
  return out;
}

}  // namespace metrics::storage
