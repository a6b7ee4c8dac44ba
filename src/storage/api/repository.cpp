#include "metrics/storage/repository.hpp"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "metrics/core/errors.hpp"

namespace metrics::storage {
namespace {

// Runs an asynchronous call and waits for its completion, rethrowing its error.
// The result is handed over under a mutex, moved, so that the completing
// thread keeps no reference to the error once the caller reads it (a
// std::promise copies it and releases its own copy after waking the caller).
template <class T, class Start>
T wait_for(Start&& start) {
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::exception_ptr err;
    std::optional<T> value;
  };
  auto shared = std::make_shared<Shared>();
  start([shared](std::exception_ptr err, T value) {
    {
      std::lock_guard lock(shared->mu);
      shared->err = std::move(err);
      if (!shared->err) shared->value.emplace(std::move(value));
      shared->done = true;
    }
    shared->cv.notify_all();
  });
  std::unique_lock lock(shared->mu);
  shared->cv.wait(lock, [&] { return shared->done; });
  if (shared->err) std::rethrow_exception(std::exchange(shared->err, nullptr));
  return std::move(*shared->value);
}

}  // namespace

void Repository::health(Callback<Health> done) {
  ping([done = std::move(done)](std::exception_ptr err, bool) {
    if (!err) {
      done(nullptr, Health{});
      return;
    }
    try {
      std::rethrow_exception(err);
    } catch (const core::StorageUnavailable& e) {
      done(nullptr, Health{.ok = false, .reason = e.what()});
    } catch (...) {
      // The check could not run (a full queue, say): no verdict.
      done(std::current_exception(), Health{});
    }
  });
}

bool Repository::begin_once(std::vector<core::Update>& batch, std::int64_t received_ms,
                            const Guard& guard, Callback<OnceApplied>& done) {
  Once early = Once::applied;
  switch (keys_.begin(guard, received_ms)) {
    case KeyStore::Status::fresh:
      return true;
    case KeyStore::Status::replay:
      early = Once::replayed;
      break;
    case KeyStore::Status::mismatch:
      early = Once::mismatch;
      break;
    case KeyStore::Status::in_flight:
      early = Once::in_flight;
      break;
  }
  done(nullptr, OnceApplied{.outcome = early, .applied = {}, .batch = std::move(batch)});
  return false;
}

Callback<Applied> Repository::finish_once(const Guard& guard, std::int64_t received_ms,
                                          Callback<OnceApplied> done) {
  return
      [this, guard, received_ms, done = std::move(done)](std::exception_ptr err, Applied applied) {
        if (err) {
          keys_.abort(guard);
          done(std::move(err), OnceApplied{});
          return;
        }
        keys_.commit(guard, received_ms);
        done(nullptr,
             OnceApplied{.outcome = Once::applied, .applied = std::move(applied), .batch = {}});
      };
}

void Repository::apply_once(std::vector<core::Update> batch, std::int64_t received_ms, Guard guard,
                            Callback<OnceApplied> done) {
  if (!begin_once(batch, received_ms, guard, done)) return;
  apply(std::move(batch), received_ms, finish_once(guard, received_ms, std::move(done)));
}

OnceApplied apply_once_sync(Repository& repo, std::vector<core::Update> batch,
                            std::int64_t received_ms, Guard guard) {
  return wait_for<OnceApplied>(
      [&](auto done) { repo.apply_once(std::move(batch), received_ms, guard, std::move(done)); });
}

Applied apply_sync(Repository& repo, std::vector<core::Update> batch, std::int64_t received_ms) {
  return wait_for<Applied>(
      [&](auto done) { repo.apply(std::move(batch), received_ms, std::move(done)); });
}

std::optional<core::Point> get_sync(Repository& repo, core::SeriesKey key) {
  return wait_for<std::optional<core::Point>>(
      [&](auto done) { repo.get(std::move(key), std::move(done)); });
}

std::optional<core::Point> get_classic_sync(Repository& repo, core::MetricKey key) {
  return wait_for<std::optional<core::Point>>(
      [&](auto done) { repo.get_classic(std::move(key), std::move(done)); });
}

std::vector<core::Point> list_sync(Repository& repo) {
  return wait_for<std::vector<core::Point>>([&](auto done) { repo.list(std::move(done)); });
}

std::vector<core::Point> list_series_sync(Repository& repo) {
  return wait_for<std::vector<core::Point>>([&](auto done) { repo.list_series(std::move(done)); });
}

std::vector<core::SeriesKey> expire_sync(Repository& repo, std::int64_t cutoff_ms) {
  return wait_for<std::vector<core::SeriesKey>>(
      [&](auto done) { repo.expire(cutoff_ms, std::move(done)); });
}

bool ping_sync(Repository& repo) {
  return wait_for<bool>([&](auto done) { repo.ping(std::move(done)); });
}

Health health_sync(Repository& repo) {
  return wait_for<Health>([&](auto done) { repo.health(std::move(done)); });
}

}  // namespace metrics::storage
