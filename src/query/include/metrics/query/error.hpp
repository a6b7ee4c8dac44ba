// Query errors, with the Prometheus HTTP API's errorType: a parse error or an
// unsupported feature is bad_data (400), an evaluation error execution (422),
// a query past its deadline timeout (503), a cancelled one canceled.
//
//   try { engine.instant(q, "sum(", t); } catch (const query::QueryError& e) { e.type(); }
//
// A plain value type.
#pragma once

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace metrics::query {

enum class ErrorType { bad_data, execution, timeout, canceled };

// "bad_data", "execution", "timeout", "canceled".
[[nodiscard]] std::string_view error_type_name(ErrorType type) noexcept;

class QueryError : public std::runtime_error {
 public:
  QueryError(ErrorType type, const std::string& message,
             std::optional<std::size_t> position = std::nullopt)
      : std::runtime_error(message), type_(type), position_(position) {}
  [[nodiscard]] ErrorType type() const noexcept { return type_; }
  // The byte offset in the query of a parse error.
  [[nodiscard]] std::optional<std::size_t> position() const noexcept { return position_; }

 private:
  ErrorType type_;
  std::optional<std::size_t> position_;
};

}  // namespace metrics::query
