// The storage seam: every storage (memory, file, PostgreSQL) implements
// Repository, and nothing outside src/storage knows which one is in use.
//
// The interface is asynchronous so that storages which must wait (an fsync,
// a PostgreSQL commit) can coalesce many concurrent requests into one
// operation without holding a thread per request. Each call completes
// exactly once by invoking its callback, possibly inline on the calling
// thread, possibly on a storage thread. The callback receives either an
// exception (core::InvalidInput, core::NotFound, core::StorageUnavailable,
// core::Overloaded) or the result. Callbacks must not block.
//
// Two tables live behind it (API.md Part 2): the series, identified by type,
// name and labels, each with the server's receive time of its last write;
// and the classic values, one per type and name, to which every write of
// that type and name also applies (a gauge takes the last value, a counter
// adds the delta), exactly as if labels did not exist. Classic values never
// expire; series are removed by expire().
//
//   repo.apply(std::move(merged), now_ms, [](std::exception_ptr err, storage::Applied stored) {
//     ...
//   });
//
// Thread-safety: every implementation is safe to call from any number of
// threads at once.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "metrics/core/metric.hpp"
#include "metrics/storage/idempotency.hpp"

namespace metrics::storage {

template <class T>
using Callback = std::function<void(std::exception_ptr, T)>;

// What a health check found: ok, or why not, in one line for people (the
// body of /ping's 500 and the logs; never a password).
struct Health {
  bool ok = true;
  std::string reason;
  friend bool operator==(const Health&, const Health&) = default;
};

// The storage's write queue as GET /metrics shows it (all zero for a
// storage that applies writes inline: memory, file with an interval).
struct StorageStats {
  std::size_t queue_depth = 0;        // requests waiting now (writes and reads)
  std::size_t queue_capacity = 0;     // past it a request is Overloaded (503)
  std::uint64_t group_commits = 0;    // groups written since start
  std::uint64_t grouped_batches = 0;  // batches in those groups
};

// What a batch left behind, in batch order: series[i] is the series of
// update i after the batch (its timestamp the batch's receive time), and
// classic[i] the classic value of update i's type and name after the whole
// batch (so two updates of one name carry the same classic point).
struct Applied {
  std::vector<core::Point> series;
  std::vector<core::Point> classic;
};

// What a write guarded by an idempotency key came to (apply_once).
enum class Once : std::uint8_t {
  applied,    // the batch was applied, and its key stored with it
  replayed,   // the key was applied already with this body: nothing changed
  mismatch,   // the key was applied already with another body: nothing changed
  in_flight,  // the key's first request is still being applied: nothing changed
};
struct OnceApplied {
  Once outcome = Once::applied;
  Applied applied;  // applied only
  // Every outcome but applied: the batch, handed back (to read its values).
  std::vector<core::Update> batch;
};

class Repository {
 public:
  virtual ~Repository() = default;
  Repository() = default;
  Repository(const Repository&) = delete;
  Repository& operator=(const Repository&) = delete;

  // Applies a batch atomically to the series and the classic values:
  // either every update is applied or none is. The batch must already be
  // merged (core::merge_batch: one entry per series) and validated;
  // received_ms is the server's receive time (ms since the Unix epoch) that
  // the written series take as their last write. A counter total (of a
  // series or of a classic value) that would overflow fails the whole batch
  // with core::InvalidInput.
  virtual void apply(std::vector<core::Update> batch, std::int64_t received_ms,
                     Callback<Applied> done) = 0;

  // apply(), guarded by an idempotency key (API.md Part 2, "Exactly-once
  // writes"): a key applied within the window (keys()) is not applied again.
  // The key is stored with the write, as durably as the write: this default
  // keeps it in memory (keys()); the file storage and PostgreSQL override it
  // to write the key in the same log record, snapshot or transaction. A
  // failed apply stores no key.
  virtual void apply_once(std::vector<core::Update> batch, std::int64_t received_ms, Guard guard,
                          Callback<OnceApplied> done);

  // The keys of the writes applied within the window, and the bounds
  // (configured once, before the first request).
  [[nodiscard]] KeyStore& keys() noexcept { return keys_; }

  // Completes with the series, or nullopt when there is none.
  virtual void get(core::SeriesKey key, Callback<std::optional<core::Point>> done) = 0;

  // Completes with the classic value, or nullopt when there is none.
  virtual void get_classic(core::MetricKey key, Callback<std::optional<core::Point>> done) = 0;

  // Completes with every classic value, sorted by name then type (the
  // classic table of GET /).
  virtual void list(Callback<std::vector<core::Point>> done) = 0;

  // Completes with every series, sorted by name, type, then labels.
  virtual void list_series(Callback<std::vector<core::Point>> done) = 0;

  // Removes every series whose last write is older than cutoff_ms and
  // completes with their keys (classic values stay). With several servers
  // on one database, a series another server still writes is not older
  // than the cutoff, so it stays.
  virtual void expire(std::int64_t cutoff_ms, Callback<std::vector<core::SeriesKey>> done) = 0;

  // Completes with no error when the storage answers (for PostgreSQL: a
  // real round trip), with core::StorageUnavailable otherwise.
  virtual void ping(Callback<bool> done) = 0;

  // Completes with the storage's health: ok, or the reason it does not
  // answer (for PostgreSQL, for instance, `PostgreSQL authentication failed
  // for user "x"`). The same check as ping(); an error only when the check
  // could not run at all (core::Overloaded: a full queue). This default
  // derives the reason from ping()'s core::StorageUnavailable message.
  virtual void health(Callback<Health> done);

  // The write queue's depth and group commits so far (cheap: one lock).
  [[nodiscard]] virtual StorageStats stats() const { return {}; }

  // Makes everything acknowledged so far durable and stops background work;
  // called once at graceful shutdown, after the last request. Blocking.
  virtual void close() = 0;

 protected:
  // The two halves of apply_once() for a storage that overrides it. The
  // first checks the key: false when the key decided the answer (done has
  // run), true when the batch must be applied (the key is in flight). The
  // second wraps done for that apply: it stores the key on success (again,
  // harmlessly, if the storage did) and frees it on failure.
  bool begin_once(std::vector<core::Update>& batch, std::int64_t received_ms, const Guard& guard,
                  Callback<OnceApplied>& done);
  Callback<Applied> finish_once(const Guard& guard, std::int64_t received_ms,
                                Callback<OnceApplied> done);

  KeyStore keys_;
};

// Blocking helpers for tests, tools and start-up code; rethrow the error.
// apply_sync without a time uses 0 as the receive time.
Applied apply_sync(Repository& repo, std::vector<core::Update> batch, std::int64_t received_ms = 0);
OnceApplied apply_once_sync(Repository& repo, std::vector<core::Update> batch,
                            std::int64_t received_ms, Guard guard);
std::optional<core::Point> get_sync(Repository& repo, core::SeriesKey key);
std::optional<core::Point> get_classic_sync(Repository& repo, core::MetricKey key);
std::vector<core::Point> list_sync(Repository& repo);
std::vector<core::Point> list_series_sync(Repository& repo);
std::vector<core::SeriesKey> expire_sync(Repository& repo, std::int64_t cutoff_ms);
bool ping_sync(Repository& repo);
Health health_sync(Repository& repo);

}  // namespace metrics::storage
