#include "detail/write_ahead_log.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <system_error>

#include "detail/complete.hpp"
#include "detail/file_format.hpp"
#include "metrics/core/errors.hpp"

namespace metrics::storage::detail {
namespace {

std::uint64_t random_log_id() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

std::exception_ptr unavailable(const std::string& why) {
  return std::make_exception_ptr(
      core::StorageUnavailable("storage file cannot be written: " + why));
}

}  // namespace

WriteAheadLog::WriteAheadLog(const FileOptions& options, MemoryRepository& mem,
                             std::uint64_t last_seq)
    : opt_(options),
      log_path_(FileRepository::log_path(options.path)),
      mem_(mem),
      clock_(options.clock ? options.clock : core::real_clock()),
      last_seq_(last_seq),
      queue_(options.max_queue, *clock_) {
  compact();
  thread_ = std::thread([this] { run(); });
}

WriteAheadLog::~WriteAheadLog() {
  close();
}

void WriteAheadLog::apply(std::vector<core::Metric> batch,
                          Callback<std::vector<core::Metric>> done) {
  Pending pending{std::move(batch), std::move(done)};
  std::exception_ptr err;
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      err = std::make_exception_ptr(core::StorageUnavailable("file storage is closed"));
    } else if (!queue_.push(std::move(pending))) {
      err = std::make_exception_ptr(core::Overloaded("file storage write queue is full"));
    }
  }
  if (err) {
    complete(pending.done, std::move(err), {});
    return;
  }
  cv_.notify_one();
}

void WriteAheadLog::close() {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Fold the log into the snapshot so that the next start reads one file.
  compact();
}

void WriteAheadLog::run() {
  for (;;) {
    std::vector<Pending> group;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued is done
      group = queue_.take_group(lock, queue_.capacity(), [this] { return stopping_; });
    }
    commit_group(group);
  }
}

// Applies a group of batches with one log write and one fdatasync.
void WriteAheadLog::commit_group(std::vector<Pending>& group) {
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
void WriteAheadLog::append_overlay() {
  values_.clear();
  values_.reserve(overlay_.size());
  for (const auto& [key, staged] : overlay_)
    values_.push_back(staged.now);
  const auto seq = ++last_seq_;
  buf_.clear();
  append_log_record(buf_, log_id_, seq, values_);
  if (log_size_ + buf_.size() > allocated_) preallocate(log_size_ + buf_.size());
  pwrite_all(log_fd_.get(), buf_, log_size_, log_path_);
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
void WriteAheadLog::preallocate(std::uint64_t needed) {
  constexpr std::uint64_t kChunk = std::uint64_t{1} << 20;
  const auto target = (needed + kChunk) / kChunk * kChunk;
  const std::string zeros(static_cast<std::size_t>(kChunk), '\0');
  try {
    for (auto at = allocated_; at < target; at += kChunk) {
      pwrite_all(log_fd_.get(), std::string_view(zeros).substr(0, target - at), at, log_path_);
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
void WriteAheadLog::truncate_log(std::uint64_t size) noexcept {
  if (::ftruncate(log_fd_.get(), static_cast<off_t>(size)) == 0) {
    allocated_ = size;
  } else {
    spdlog::warn("file storage: cannot truncate {}: {}", log_path_.string(),
                 std::generic_category().message(errno));
  }
}

// Makes memory show the overlay: one batch of counter differences and
// gauge values (this thread is the only writer of memory).
void WriteAheadLog::publish_overlay() {
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
bool WriteAheadLog::stage(std::vector<core::Metric>& batch) {
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

void WriteAheadLog::rollback_stage() {
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
bool WriteAheadLog::compact() {
  const auto new_id = random_log_id();
  std::filesystem::path tmp;
  try {
    tmp = write_temp(opt_.path, encode_snapshot(mem_.list_now(), new_id, last_seq_));
  } catch (const std::exception& e) {
    // The old snapshot and log are untouched and still valid.
    return fail_compaction(e.what(), false);
  }
  try {
    commit_temp(tmp, opt_.path);
    UniqueFd fd{::open(log_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)};
    if (!fd) {
      throw std::system_error(errno, std::generic_category(), "cannot open " + log_path_.string());
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
      throw std::system_error(errno, std::generic_category(), "cannot stat " + log_path_.string());
    }
    const auto header = encode_log_header(new_id);
    pwrite_all(fd.get(), header, 0, log_path_);
    if (::fdatasync(fd.get()) != 0) {
      throw std::system_error(errno, std::generic_category(),
                              "cannot fdatasync " + log_path_.string());
    }
    if (st.st_size == 0) {
      fsync_dir(log_path_.parent_path().empty() ? std::filesystem::path{"."}
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

bool WriteAheadLog::fail_compaction(const std::string& what, bool log_invalid) {
  spdlog::error("file storage: cannot compact into {}: {}", opt_.path.string(), what);
  last_error_ = what;
  if (log_invalid || !log_ok_) {
    log_ok_ = false;
    healthy_.store(false, std::memory_order_relaxed);
  }
  return false;
}

}  // namespace metrics::storage::detail
