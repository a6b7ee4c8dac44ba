// The error types thrown inside the server and the storages. Each maps to one
// HTTP status in exactly one place (the server's error mapper); the agent's
// public API never lets them escape.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>

namespace metrics::core {

// Base of every project error; what() is a short client-facing message.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The request is malformed or its values are invalid (400).
class InvalidInput : public Error {
 public:
  using Error::Error;
};

// The metric asked for does not exist (404).
class NotFound : public Error {
 public:
  using Error::Error;
};

// The storage cannot be reached or failed (500 / 503).
class StorageUnavailable : public Error {
 public:
  using Error::Error;
};

// The storage failed after the update may already have been stored: the
// connection to the database was lost while its commit was on the way, and
// the outcome could not be checked afterwards (500). Deliberately not a
// StorageUnavailable, whose 503 promises that nothing was stored.
class OutcomeUnknown : public Error {
 public:
  using Error::Error;
};

// The storage is saturated; the client should retry after retry_after (503).
class Overloaded : public Error {
 public:
  explicit Overloaded(const std::string& what,
                      std::chrono::seconds retry_after = std::chrono::seconds{1})
      : Error(what), retry_after_(retry_after) {}
  [[nodiscard]] std::chrono::seconds retry_after() const noexcept { return retry_after_; }

 private:
  std::chrono::seconds retry_after_;
};

// A series limit (--max-series, --max-series-per-instance) would be passed;
// what() names the limit and nothing of the request is stored (429).
class LimitExceeded : public Error {
 public:
  using Error::Error;
};

}  // namespace metrics::core
