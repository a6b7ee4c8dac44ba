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
//   repo.apply(std::move(merged), [](std::exception_ptr err, std::vector<core::Metric> stored) {
//     ...
//   });
//
// Thread-safety: every implementation is safe to call from any number of
// threads at once.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "metrics/core/metric.hpp"

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

class Repository {
 public:
  virtual ~Repository() = default;
  Repository() = default;
  Repository(const Repository&) = delete;
  Repository& operator=(const Repository&) = delete;

  // Applies a batch atomically: either every metric is applied or none is.
  // The batch must already be merged (core::merge_batch: one entry per
  // metric) and validated. Completes with each metric as stored after the
  // batch, in batch order (a counter carries its new total in `delta`).
  // A counter total that would overflow fails the whole batch with
  // core::InvalidInput.
  virtual void apply(std::vector<core::Metric> batch, Callback<std::vector<core::Metric>> done) = 0;

  // Completes with the stored metric, or nullopt when there is none.
  virtual void get(core::MetricKey key, Callback<std::optional<core::Metric>> done) = 0;

  // Completes with every stored metric, sorted by name then type.
  virtual void list(Callback<std::vector<core::Metric>> done) = 0;

  // Completes with no error when the storage answers (for PostgreSQL: a
  // real round trip), with core::StorageUnavailable otherwise.
  virtual void ping(Callback<bool> done) = 0;

  // Completes with the storage's health: ok, or the reason it does not
  // answer (for PostgreSQL, for instance, `PostgreSQL authentication failed
  // for user "x"`). The same check as ping(); an error only when the check
  // could not run at all (core::Overloaded: a full queue). This default
  // derives the reason from ping()'s core::StorageUnavailable message.
  virtual void health(Callback<Health> done);

  // Makes everything acknowledged so far durable and stops background work;
  // called once at graceful shutdown, after the last request. Blocking.
  virtual void close() = 0;
};

// Blocking helpers for tests, tools and start-up code; rethrow the error.
std::vector<core::Metric> apply_sync(Repository& repo, std::vector<core::Metric> batch);
std::optional<core::Metric> get_sync(Repository& repo, core::MetricKey key);
std::vector<core::Metric> list_sync(Repository& repo);
bool ping_sync(Repository& repo);
Health health_sync(Repository& repo);

}  // namespace metrics::storage
