// Completing a Repository callback from a storage thread.
#pragma once

#include <spdlog/spdlog.h>

#include <exception>
#include <utility>

#include "metrics/storage/repository.hpp"

namespace metrics::storage::detail {

// Callbacks must not throw (repository.hpp); if one does anyway, the storage
// thread that ran it must survive, so the error is logged and dropped here.
template <class T>
void complete(const Callback<T>& done, std::exception_ptr err, T value) noexcept {
  try {
    done(std::move(err), std::move(value));
  } catch (const std::exception& e) {
    spdlog::error("storage: a completion callback threw: {}", e.what());
  } catch (...) {
    spdlog::error("storage: a completion callback threw a non-standard exception");
  }
}

}  // namespace metrics::storage::detail
