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

WriteAheadLog::WriteAheadLog(const FileOptions& options, MemoryRepository& mem, KeyStore& keys,
                             std::uint64_t last_seq)
    : opt_(options),
      log_path_(FileRepository::log_path(options.path)),
      mem_(mem),
      keys_(keys),
      clock_(options.clock ? options.clock : core::real_clock()),
      last_seq_(last_seq),
      queue_(options.max_queue, *clock_) {
  compact();
  thread_ = std::thread([this] { run(); });
}

WriteAheadLog::~WriteAheadLog() {
  close();
}

void WriteAheadLog::apply(std::vector<core::Update> batch, std::int64_t received_ms,
                          Callback<Applied> done) {
  push(
      Pending{std::move(batch), received_ms, std::move(done), std::nullopt, nullptr, std::nullopt});
}

void WriteAheadLog::apply_once(std::vector<core::Update> batch, std::int64_t received_ms,
                               Guard guard, Callback<Applied> done) {
  push(Pending{std::move(batch), received_ms, std::move(done), std::nullopt, nullptr, guard});
}

void WriteAheadLog::push(Pending pending) {
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

void WriteAheadLog::expire(std::int64_t cutoff_ms, Callback<std::vector<core::SeriesKey>> done) {
  Pending pending{{}, 0, nullptr, cutoff_ms, std::move(done), std::nullopt};
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
    complete(pending.expired, std::move(err), {});
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

// Commits the batches of a group with one log write and one fdatasync; an
// expiry in the group is committed on its own, in its place in the order.
void WriteAheadLog::commit_group(std::vector<Pending>& group) {
  std::vector<Pending> run;
  run.reserve(group.size());
  for (auto& p : group) {
    if (!p.expire_cutoff) {
      run.push_back(std::move(p));
      continue;
    }
    if (!run.empty()) commit_batches(run);
    run.clear();
    commit_expiry(p);
  }
  if (!run.empty()) commit_batches(run);
  if (log_ok_ && log_size_ > opt_.compact_log_bytes) compact();
}

void WriteAheadLog::fail_write(const std::exception& e) {
  // After a failed write or fdatasync the log's content is unknown: stop
  // using it. The next group first writes a fresh snapshot and log.
  spdlog::error("file storage: {}", e.what());
  last_error_ = e.what();
  log_ok_ = false;
  truncate_log(log_size_);
  healthy_.store(false, std::memory_order_relaxed);
}

void WriteAheadLog::commit_batches(std::vector<Pending>& group) {
  std::vector<std::exception_ptr> errors(group.size());
  std::vector<Applied> answers(group.size());
  if (!log_ok_ && !compact()) {
    for (auto& p : group)
      complete(p.done, unavailable(last_error_), {});
    return;
  }
  // Compute what the group stores without touching memory: memory must
  // only ever show what is on disk, so that a failed write leaves nothing
  // behind and a snapshot taken from memory matches the log.
  series_overlay_.clear();
  classic_overlay_.clear();
  std::fill(position_cache_.begin(), position_cache_.end(), CachedNodes{});
  std::size_t accepted = 0;
  key_records_.clear();
  for (std::size_t i = 0; i < group.size(); ++i) {
    if (stage(group[i], answers[i])) {
      ++accepted;
      if (group[i].guard) key_records_.push_back(KeyRecord{*group[i].guard, group[i].received_ms});
    } else {
      errors[i] = std::make_exception_ptr(
          core::InvalidInput("counter total would overflow int64; nothing of the batch stored"));
    }
  }
  if (accepted > 0) {
    series_values_.clear();
    classic_values_.clear();
    series_values_.reserve(series_overlay_.size());
    classic_values_.reserve(classic_overlay_.size());
    for (auto& [key, p] : series_overlay_)
      series_values_.push_back(std::move(p));
    for (auto& [key, p] : classic_overlay_)
      classic_values_.push_back(std::move(p));
    try {
      append_record(series_values_, classic_values_, {}, key_records_);
      publish_overlay();
      // Before the callbacks: a compaction after this group keeps them.
      for (const auto& k : key_records_)
        keys_.commit(k.guard, k.received_ms);
    } catch (const std::exception& e) {
      fail_write(e);
      for (auto& err : errors) {
        if (!err) err = unavailable(last_error_);
      }
    }
  }
  for (std::size_t i = 0; i < group.size(); ++i) {
    if (errors[i]) answers[i] = {};
    complete(group[i].done, std::move(errors[i]), std::move(answers[i]));
  }
}

void WriteAheadLog::commit_expiry(Pending& expiry) {
  if (!log_ok_ && !compact()) {
    complete(expiry.expired, unavailable(last_error_), {});
    return;
  }
  // This thread is the only writer of memory: what it finds stays true
  // until it removes it.
  auto gone = mem_.expired_keys_now(*expiry.expire_cutoff);
  if (gone.empty()) {
    complete(expiry.expired, nullptr, std::move(gone));
    return;
  }
  try {
    append_record({}, {}, gone);
  } catch (const std::exception& e) {
    fail_write(e);
    complete(expiry.expired, unavailable(last_error_), {});
    return;
  }
  mem_.remove_now(gone);
  complete(expiry.expired, nullptr, std::move(gone));
}

// Writes one record and makes it durable.
void WriteAheadLog::append_record(std::span<const core::Point> series,
                                  std::span<const core::Point> classic,
                                  std::span<const core::SeriesKey> removed,
                                  std::span<const KeyRecord> keys) {
  const auto seq = ++last_seq_;
  buf_.clear();
  append_log_record(buf_, log_id_, seq, series, classic, removed, keys);
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

// Makes memory show what the record holds (this thread is the only
// writer of memory, so values computed from it can be set as they are).
void WriteAheadLog::publish_overlay() {
  mem_.store_now(series_values_, classic_values_);
}

// Adds one batch to the overlays and fills its answer; false (overlays
// unchanged) when a counter total would overflow.
bool WriteAheadLog::stage(Pending& pending, Applied& answer) {
  undo_.clear();
  auto& batch = pending.batch;
  if (position_cache_.size() < batch.size()) position_cache_.resize(batch.size());
  answer.series.clear();
  answer.series.reserve(batch.size());
  for (std::size_t j = 0; j < batch.size(); ++j) {
    auto& u = batch[j];
    // Agents send the same names (and labels) in the same order: the
    // entries used at this position by the previous batch are usually the
    // ones, and comparing them is far cheaper than hashing.
    auto [snode, cnode] = position_cache_[j];
    bool series_inserted = false;
    bool classic_inserted = false;
    if (snode == nullptr || snode->first.type != u.type || snode->first.id != u.id ||
        snode->first.labels != u.labels) {
      auto sit = series_overlay_.find(core::SeriesView(u));
      if (sit == series_overlay_.end()) {
        auto key = core::SeriesKey::of(u);
        auto current = mem_.get_now(key);
        core::Point start =
            current ? std::move(*current) : core::Point{u.id, u.type, u.labels, 0, 0, 0};
        sit = series_overlay_.emplace(std::move(key), std::move(start)).first;
        series_inserted = true;
      }
      snode = &*sit;
      cnode = nullptr;  // the classic entry depends on the name only: checked below
    }
    if (u.series_only) {
      // The classic value stays as it is: nothing of it is staged or logged.
      position_cache_[j] = {snode, cnode};
      core::Point& series = snode->second;
      undo_.push_back(Undo{snode, nullptr, series.total, series.value, series.timestamp_ms, 0, 0,
                           series_inserted, false});
      if (u.type == core::MetricType::counter) {
        const auto s = core::checked_add(series.total, u.delta);
        if (!s) {
          rollback_stage();
          return false;
        }
        series.total = *s;
      } else {
        series.value = u.value;
      }
      series.timestamp_ms = pending.received_ms;
      continue;
    }
    if (cnode == nullptr || cnode->first.type != u.type || cnode->first.id != u.id) {
      core::MetricKey ckey{u.type, u.id};
      auto cit = classic_overlay_.find(ckey);
      if (cit == classic_overlay_.end()) {
        auto current = mem_.get_classic_now(ckey);
        core::Point start = current ? std::move(*current) : core::Point{u.id, u.type, {}, 0, 0, 0};
        cit = classic_overlay_.emplace(std::move(ckey), std::move(start)).first;
        classic_inserted = true;
      }
      cnode = &*cit;
    }
    position_cache_[j] = {snode, cnode};
    core::Point& series = snode->second;
    core::Point& classic = cnode->second;
    undo_.push_back(Undo{snode, cnode, series.total, series.value, series.timestamp_ms,
                         classic.total, classic.value, series_inserted, classic_inserted});
    if (u.type == core::MetricType::counter) {
      const auto s = core::checked_add(series.total, u.delta);
      const auto c = core::checked_add(classic.total, u.delta);
      if (!s || !c) {
        rollback_stage();
        return false;
      }
      series.total = *s;
      classic.total = *c;
    } else {
      series.value = u.value;
      classic.value = u.value;
    }
    series.timestamp_ms = pending.received_ms;
  }
  // The answer takes the batch's own names and labels (no copies); the
  // classic values are read after the whole batch.
  answer.classic.clear();
  answer.classic.reserve(batch.size());
  for (std::size_t j = 0; j < batch.size(); ++j) {
    auto& u = batch[j];
    const core::Point& series = undo_[j].series->second;
    if (undo_[j].classic != nullptr) {
      answer.classic.push_back(undo_[j].classic->second);
    } else {
      answer.classic.push_back(core::Point{u.id, u.type, {}, 0, 0, 0});
    }
    answer.series.emplace_back(std::move(u.id), u.type, std::move(u.labels), series.total,
                               series.value, series.timestamp_ms);
  }
  return true;
}

void WriteAheadLog::rollback_stage() {
  for (auto u = undo_.rbegin(); u != undo_.rend(); ++u) {
    if (u->series_inserted) {
      series_overlay_.erase(series_overlay_.find(core::SeriesView(u->series->first)));
    } else {
      u->series->second.total = u->old_series_total;
      u->series->second.value = u->old_series_value;
      u->series->second.timestamp_ms = u->old_series_ms;
    }
    if (u->classic == nullptr) continue;  // series-only
    if (u->classic_inserted) {
      classic_overlay_.erase(classic_overlay_.find(u->classic->first));
    } else {
      u->classic->second.total = u->old_total;
      u->classic->second.value = u->old_value;
    }
  }
  // Erased entries may be cached.
  std::fill(position_cache_.begin(), position_cache_.end(), CachedNodes{});
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
    const auto keys = keys_.list();
    const auto contents = mem_.contents_now();
    tmp = write_temp(opt_.path,
                     encode_snapshot(contents.classic, contents.series, new_id, last_seq_, keys));
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
