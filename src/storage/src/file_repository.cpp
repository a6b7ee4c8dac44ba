#include "metrics/storage/file_repository.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <random>
#include <system_error>
#include <thread>
#include <unordered_map>

#include "detail/complete.hpp"
#include "detail/file_format.hpp"
#include "detail/linger.hpp"
#include "detail/unique_fd.hpp"
#include "metrics/core/errors.hpp"
#include "metrics/storage/memory_repository.hpp"

namespace metrics::storage {
namespace {

using detail::complete;
using MetricMap = std::unordered_map<core::MetricKey, core::Metric, core::MetricKeyHash>;

struct Pending {
  std::vector<core::Metric> batch;
  Callback<std::vector<core::Metric>> done;
};

std::uint64_t random_log_id() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

std::exception_ptr unavailable(const std::string& why) {
  return std::make_exception_ptr(
      core::StorageUnavailable("storage file cannot be written: " + why));
}

}  // namespace

class FileRepository::Impl {
 public:
  explicit Impl(FileOptions options)
      : opt_(std::move(options)),
        log_path_(log_path(opt_.path)),
        sync_(opt_.store_interval.count() == 0) {
    if (opt_.path.empty()) throw core::Error("file storage: empty file path");
    if (opt_.restore) recover();
    if (sync_) {
      // Start every run with a fresh log that continues a fresh snapshot: this
      // drops a torn tail and, with restore off, the previous run's files.
      compact();
      thread_ = std::thread([this] { run_writer(); });
    } else {
      thread_ = std::thread([this] { run_interval(); });
    }
  }

  ~Impl() { close(); }

  void apply(std::vector<core::Metric> batch, Callback<std::vector<core::Metric>> done) {
    if (!sync_) {
      std::exception_ptr err;
      std::vector<core::Metric> stored;
      if (closed_flag_.load(std::memory_order_acquire)) {
        // The last snapshot is written: an update now would be lost.
        complete(done, std::make_exception_ptr(core::StorageUnavailable("file storage is closed")),
                 std::move(stored));
        return;
      }
      try {
        stored = mem_.apply_now(batch);
        changes_.fetch_add(1, std::memory_order_relaxed);
      } catch (const core::InvalidInput&) {
        err = std::current_exception();
      }
      complete(done, std::move(err), std::move(stored));
      return;
    }
    std::exception_ptr err;
    {
      std::lock_guard lock(mu_);
      if (stopping_) {
        err = std::make_exception_ptr(core::StorageUnavailable("file storage is closed"));
      } else if (queue_.size() >= opt_.max_queue) {
        err = std::make_exception_ptr(core::Overloaded("file storage write queue is full"));
      } else {
        queue_.push_back(Pending{std::move(batch), std::move(done)});
      }
    }
    if (err) {
      complete(done, std::move(err), {});
      return;
    }
    cv_.notify_one();
  }

  void get(const core::MetricKey& key, const Callback<std::optional<core::Metric>>& done) {
    complete(done, nullptr, mem_.get_now(key));
  }

  void list(const Callback<std::vector<core::Metric>>& done) {
    complete(done, nullptr, mem_.list_now());
  }

  void ping(const Callback<bool>& done) {
    if (healthy_.load(std::memory_order_relaxed)) {
      complete(done, nullptr, true);
    } else {
      complete(done,
               std::make_exception_ptr(
                   core::StorageUnavailable("the last write to the storage file failed")),
               false);
    }
  }

  void close() {
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      closed_ = true;
      stopping_ = true;
      closed_flag_.store(true, std::memory_order_release);
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (sync_) {
      // Fold the log into the snapshot so that the next start reads one file.
      compact();
    } else {
      write_interval_snapshot(true);
    }
  }

 private:
  // Loads snapshot + log. Throws core::Error naming the file; never writes.
  void recover() {
    std::string text;
    detail::Snapshot snap;
    try {
      if (detail::read_file_if_exists(opt_.path, text)) snap = detail::decode_snapshot(text);
    } catch (const std::system_error& e) {
      throw core::Error("file storage: cannot read " + opt_.path.string() + ": " +
                        e.code().message());
    } catch (const std::exception& e) {
      throw core::Error("file storage: cannot parse " + opt_.path.string() + ": " + e.what());
    }
    MetricMap state;
    for (auto& m : snap.metrics) {
      core::MetricKey key{m.type, m.id};
      state.insert_or_assign(std::move(key), std::move(m));
    }
    last_seq_ = snap.seq;
    if (snap.log_id) {
      try {
        if (detail::read_file_if_exists(log_path_, text)) {
          const auto id = detail::decode_log_header(text);
          if (id && *id == *snap.log_id) {
            const auto replay =
                detail::replay_log(std::string_view(text).substr(detail::kLogHeaderSize), *id,
                                   snap.seq, [&state](core::Metric m) {
                                     core::MetricKey key{m.type, m.id};
                                     state.insert_or_assign(std::move(key), std::move(m));
                                   });
            last_seq_ = std::max(last_seq_, replay.last_seq);
            spdlog::info("file storage: replayed {} log records from {}", replay.records,
                         log_path_.string());
            if (replay.torn) {
              // Unused space holds zeros, or records of an earlier log (the
              // file is reused), or the torn last write of a crash.
              spdlog::info("file storage: replay of {} stopped {} bytes before its end",
                           log_path_.string(), replay.ignored_bytes);
            }
          }
        }
      } catch (const std::system_error& e) {
        throw core::Error("file storage: cannot read " + log_path_.string() + ": " +
                          e.code().message());
      } catch (const std::exception& e) {
        throw core::Error("file storage: cannot parse " + log_path_.string() + ": " + e.what());
      }
    }
    std::vector<core::Metric> metrics;
    metrics.reserve(state.size());
    for (auto& [key, m] : state)
      metrics.push_back(std::move(m));
    mem_.reset(metrics);
    spdlog::info("file storage: restored {} metrics from {}", metrics.size(), opt_.path.string());
  }

  void run_interval() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      if (cv_.wait_for(lock, opt_.store_interval, [this] { return stopping_; })) break;
      lock.unlock();
      write_interval_snapshot(false);
      lock.lock();
    }
  }

  void write_interval_snapshot(bool always) {
    const auto changes = changes_.load(std::memory_order_relaxed);
    if (!always && changes == written_changes_) return;
    try {
      // No log id: a log left by an earlier synchronous run is stale now.
      detail::replace_file_atomically(opt_.path,
                                      detail::encode_snapshot(mem_.list_now(), std::nullopt, 0));
      written_changes_ = changes;
      healthy_.store(true, std::memory_order_relaxed);
    } catch (const std::exception& e) {
      healthy_.store(false, std::memory_order_relaxed);
      spdlog::error("file storage: cannot write snapshot: {}", e.what());
    }
  }

  void run_writer() {
    std::vector<Pending> group;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and everything queued is done
        detail::linger(
            lock, [this] { return queue_.size(); }, opt_.max_queue, [this] { return stopping_; });
        group.swap(queue_);
      }
      commit_group(group);
      group.clear();
    }
  }

  // Applies a group of batches with one log write and one fdatasync.
  void commit_group(std::vector<Pending>& group) {
    std::vector<std::exception_ptr> errors(group.size());
    if (!log_ok_ && !compact()) {
      for (auto& p : group)
        complete(p.done, unavailable(last_error_), {});
      return;
    }
    // Compute what the group stores without touching memory: memory must
    // only ever show what is on disk, so that a failed write leaves nothing
    // behind and a snapshot taken from memory matches the log. Each batch
    // becomes its own answer (counters carry their new totals).
    overlay_.clear();
    std::fill(position_cache_.begin(), position_cache_.end(), nullptr);
    std::size_t accepted = 0;
    for (std::size_t i = 0; i < group.size(); ++i) {
      if (stage(group[i].batch)) {
        ++accepted;
      } else {
        errors[i] = std::make_exception_ptr(
            core::InvalidInput("counter total would overflow int64; nothing of the batch stored"));
      }
    }
    if (accepted > 0) {
      try {
        append_overlay();
        publish_overlay();
      } catch (const std::exception& e) {
        // After a failed write or fdatasync the log's content is unknown: stop
        // using it. The next group first writes a fresh snapshot and log.
        spdlog::error("file storage: {}", e.what());
        last_error_ = e.what();
        log_ok_ = false;
        truncate_log(log_size_);
        healthy_.store(false, std::memory_order_relaxed);
        for (auto& err : errors) {
          if (!err) err = unavailable(last_error_);
        }
      }
    }
    for (std::size_t i = 0; i < group.size(); ++i) {
      if (errors[i]) group[i].batch.clear();
      complete(group[i].done, std::move(errors[i]), std::move(group[i].batch));
    }
    if (log_ok_ && log_size_ > opt_.compact_log_bytes) compact();
  }

  // Writes the overlay as one record and makes it durable.
  void append_overlay() {
    values_.clear();
    values_.reserve(overlay_.size());
    for (const auto& [key, staged] : overlay_)
      values_.push_back(staged.now);
    const auto seq = ++last_seq_;
    buf_.clear();
    detail::append_log_record(buf_, log_id_, seq, values_);
    if (log_size_ + buf_.size() > allocated_) preallocate(log_size_ + buf_.size());
    detail::pwrite_all(log_fd_.get(), buf_, log_size_, log_path_);
    allocated_ = std::max(allocated_, log_size_ + buf_.size());
    if (::fdatasync(log_fd_.get()) != 0) {
      throw std::system_error(errno, std::generic_category(),
                              "cannot fdatasync " + log_path_.string());
    }
    log_size_ += buf_.size();
  }

  // Grows the log in zeroed chunks past `needed`: an fdatasync after
  // overwriting allocated, written blocks needs no metadata journal commit,
  // which is most of its cost on ext4. Growing is only an optimisation: when
  // the disk has no room for a whole chunk, the part written is given back
  // and the record alone extends the file.
  void preallocate(std::uint64_t needed) {
    constexpr std::uint64_t kChunk = std::uint64_t{1} << 20;
    const auto target = (needed + kChunk) / kChunk * kChunk;
    const std::string zeros(static_cast<std::size_t>(kChunk), '\0');
    try {
      for (auto at = allocated_; at < target; at += kChunk) {
        detail::pwrite_all(log_fd_.get(), std::string_view(zeros).substr(0, target - at), at,
                           log_path_);
      }
      allocated_ = target;
      growth_failed_ = false;
    } catch (const std::system_error& e) {
      if (!growth_failed_) {  // once, not once per write while the disk stays full
        spdlog::warn("file storage: cannot grow {} by 1 MiB ({}); writing records alone",
                     log_path_.string(), e.code().message());
      }
      growth_failed_ = true;
      truncate_log(allocated_);
    }
  }

  // Gives back what lies past `size` in the log (best effort: it is called
  // on the way out of a failure). Space a full disk needs to recover, and no
  // record that was written but not acknowledged survives to be replayed.
  void truncate_log(std::uint64_t size) noexcept {
    if (::ftruncate(log_fd_.get(), static_cast<off_t>(size)) == 0) {
      allocated_ = size;
    } else {
      spdlog::warn("file storage: cannot truncate {}: {}", log_path_.string(),
                   std::generic_category().message(errno));
    }
  }

  // Makes memory show the overlay: one batch of counter differences and
  // gauge values (this thread is the only writer of memory).
  void publish_overlay() {
    std::vector<core::Metric> first;
    std::vector<core::Metric> second;  // only for a difference beyond int64
    first.reserve(overlay_.size());
    for (auto& [key, staged] : overlay_) {
      if (staged.now.type == core::MetricType::gauge) {
        first.push_back(std::move(staged.now));
        continue;
      }
      std::int64_t diff = 0;
      if (!__builtin_sub_overflow(staged.now.delta, staged.base, &diff)) {
        first.push_back(core::Metric::counter(std::move(staged.now.id), diff));
      } else {
        // base and now are far apart with opposite signs: move by halves,
        // each of which (and the total in between) fits in int64.
        const auto now = staged.now.delta;
        const auto base = staged.base;
        first.push_back(core::Metric::counter(staged.now.id, now / 2 - base / 2));
        second.push_back(
            core::Metric::counter(std::move(staged.now.id), (now - now / 2) - (base - base / 2)));
      }
    }
    (void)mem_.apply_now(first);
    if (!second.empty()) (void)mem_.apply_now(second);
  }

  // Adds one batch to overlay_ and turns the batch into its answer; false
  // (overlay unchanged) when a counter would overflow.
  bool stage(std::vector<core::Metric>& batch) {
    undo_.clear();
    if (position_cache_.size() < batch.size()) position_cache_.resize(batch.size(), nullptr);
    for (std::size_t j = 0; j < batch.size(); ++j) {
      auto& m = batch[j];
      // Agents send the same names in the same order: the entry used at
      // this position by the previous batch is usually the one, and
      // comparing it is far cheaper than hashing the name.
      OverlayNode* node = position_cache_[j];
      bool inserted = false;
      if (node == nullptr || node->first.type != m.type || node->first.id != m.id) {
        core::MetricKey key{m.type, m.id};
        auto it = overlay_.find(key);
        if (it == overlay_.end()) {
          auto current = mem_.get_now(key);
          Staged staged{current ? std::move(*current) : core::Metric{m.id, m.type, 0, 0}, 0};
          staged.base = staged.now.delta;
          it = overlay_.emplace(std::move(key), std::move(staged)).first;
          inserted = true;
        }
        node = &*it;
        position_cache_[j] = node;
      }
      undo_.push_back(Undo{node, inserted, node->second.now.delta, node->second.now.value});
      if (m.type == core::MetricType::counter) {
        const auto sum = core::checked_add(node->second.now.delta, m.delta);
        if (!sum) {
          rollback_stage();
          return false;
        }
        node->second.now.delta = *sum;
        m.delta = *sum;
      } else {
        node->second.now.value = m.value;
      }
    }
    return true;
  }

  void rollback_stage() {
    for (auto u = undo_.rbegin(); u != undo_.rend(); ++u) {
      if (u->inserted) {
        const core::MetricKey key = u->node->first;
        overlay_.erase(key);
      } else {
        u->node->second.now.delta = u->delta;
        u->node->second.now.value = u->value;
      }
    }
    // Erased entries may be cached.
    std::fill(position_cache_.begin(), position_cache_.end(), nullptr);
  }

  // Writes memory as a snapshot that names a new log id, then restarts the
  // log file under that id. Writer thread only (or before it starts / after
  // it stopped). A crash at any step recovers: before the rename the old
  // snapshot + old log are intact; after it the snapshot names an id the
  // old log does not have, so the old log is ignored and the snapshot alone
  // holds everything acknowledged. The log file is reused, not truncated:
  // its stale records fail their checksum under the new id.
  bool compact() {
    const auto new_id = random_log_id();
    std::filesystem::path tmp;
    try {
      tmp = detail::write_temp(opt_.path,
                               detail::encode_snapshot(mem_.list_now(), new_id, last_seq_));
    } catch (const std::exception& e) {
      // The old snapshot and log are untouched and still valid.
      return fail_compaction(e.what(), false);
    }
    try {
      detail::commit_temp(tmp, opt_.path);
      detail::UniqueFd fd{::open(log_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)};
      if (!fd) {
        throw std::system_error(errno, std::generic_category(),
                                "cannot open " + log_path_.string());
      }
      struct stat st {};
      if (::fstat(fd.get(), &st) != 0) {
        throw std::system_error(errno, std::generic_category(),
                                "cannot stat " + log_path_.string());
      }
      const auto header = detail::encode_log_header(new_id);
      detail::pwrite_all(fd.get(), header, 0, log_path_);
      if (::fdatasync(fd.get()) != 0) {
        throw std::system_error(errno, std::generic_category(),
                                "cannot fdatasync " + log_path_.string());
      }
      if (st.st_size == 0) {
        detail::fsync_dir(log_path_.parent_path().empty() ? std::filesystem::path{"."}
                                                          : log_path_.parent_path());
      }
      log_fd_ = std::move(fd);
      log_id_ = new_id;
      log_size_ = header.size();
      allocated_ = std::max<std::uint64_t>(static_cast<std::uint64_t>(st.st_size), header.size());
      log_ok_ = true;
      healthy_.store(true, std::memory_order_relaxed);
      return true;
    } catch (const std::exception& e) {
      // The snapshot may already name the new log: the old one must not be
      // appended to any more.
      return fail_compaction(e.what(), true);
    }
  }

  bool fail_compaction(const std::string& what, bool log_invalid) {
    spdlog::error("file storage: cannot compact into {}: {}", opt_.path.string(), what);
    last_error_ = what;
    if (log_invalid || !log_ok_) {
      log_ok_ = false;
      healthy_.store(false, std::memory_order_relaxed);
    }
    return false;
  }

  const FileOptions opt_;
  const std::filesystem::path log_path_;
  const bool sync_;
  MemoryRepository mem_;

  // Writer-thread state (synchronous mode).
  detail::UniqueFd log_fd_;
  std::uint64_t log_id_ = 0;
  std::uint64_t log_size_ = 0;   // where the next record goes
  std::uint64_t allocated_ = 0;  // bytes of the file already written (zeros past log_size_)
  std::uint64_t last_seq_ = 0;
  bool log_ok_ = false;
  bool growth_failed_ = false;  // the last preallocation found no room
  std::string last_error_ = "not opened";
  std::string buf_;
  // What the group being committed stores, by metric: the value after the
  // group, and for counters the total in memory before it.
  struct Staged {
    core::Metric now;
    std::int64_t base = 0;
  };
  std::unordered_map<core::MetricKey, Staged, core::MetricKeyHash> overlay_;
  using OverlayNode = std::pair<const core::MetricKey, Staged>;
  std::vector<OverlayNode*> position_cache_;  // by index in a batch
  // What stage() changed in the batch being staged, to undo it.
  struct Undo {
    OverlayNode* node;
    bool inserted;
    std::int64_t delta;
    double value;
  };
  std::vector<Undo> undo_;
  std::vector<core::Metric> values_;

  // Interval mode.
  std::atomic<std::uint64_t> changes_{0};
  std::uint64_t written_changes_ = 0;

  std::atomic<bool> healthy_{true};
  std::atomic<bool> closed_flag_{false};  // closed_, readable without mu_
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Pending> queue_;
  bool stopping_ = false;
  bool closed_ = false;
  std::thread thread_;
};

FileRepository::FileRepository(FileOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

FileRepository::~FileRepository() = default;

void FileRepository::apply(std::vector<core::Metric> batch,
                           Callback<std::vector<core::Metric>> done) {
  impl_->apply(std::move(batch), std::move(done));
}

void FileRepository::get(core::MetricKey key, Callback<std::optional<core::Metric>> done) {
  impl_->get(key, done);
}

void FileRepository::list(Callback<std::vector<core::Metric>> done) {
  impl_->list(done);
}

void FileRepository::ping(Callback<bool> done) {
  impl_->ping(done);
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
