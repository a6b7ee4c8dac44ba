#include "metrics/storage/repository.hpp"

#include <future>
#include <utility>

#include "metrics/core/errors.hpp"

namespace metrics::storage {
namespace {

// Runs an asynchronous call and waits for its completion, rethrowing its error.
template <class T, class Start>
T wait_for(Start&& start) {
  std::promise<T> promise;
  auto future = promise.get_future();
  start([&promise](std::exception_ptr err, T value) {
    if (err) {
      promise.set_exception(err);
    } else {
      promise.set_value(std::move(value));
    }
  });
  return future.get();
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

std::vector<core::Metric> apply_sync(Repository& repo, std::vector<core::Metric> batch) {
  return wait_for<std::vector<core::Metric>>(
      [&](auto done) { repo.apply(std::move(batch), std::move(done)); });
}

std::optional<core::Metric> get_sync(Repository& repo, core::MetricKey key) {
  return wait_for<std::optional<core::Metric>>(
      [&](auto done) { repo.get(std::move(key), std::move(done)); });
}

std::vector<core::Metric> list_sync(Repository& repo) {
  return wait_for<std::vector<core::Metric>>([&](auto done) { repo.list(std::move(done)); });
}

bool ping_sync(Repository& repo) {
  return wait_for<bool>([&](auto done) { repo.ping(std::move(done)); });
}

Health health_sync(Repository& repo) {
  return wait_for<Health>([&](auto done) { repo.health(std::move(done)); });
}

}  // namespace metrics::storage
