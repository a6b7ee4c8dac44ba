// The PromQL syntax tree of the supported subset (docs/QUERY.md), as
// parse() builds it. Every node knows its byte position in the query and its
// PromQL type; the parser has already type-checked the tree.
//
//   query::ExprPtr e = query::parse("sum by (job) (rate(x[5m]))");
//   e->type();  // ValueType::vector
//
// Immutable after parse(): safe to share between threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/query/matcher.hpp"

namespace metrics::query {

enum class ValueType { scalar, string, vector, matrix };
// Prometheus's documented names: "scalar", "string", "instant vector", "range vector".
[[nodiscard]] std::string_view value_type_name(ValueType t) noexcept;

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind {
  number,
  string,
  vector_selector,
  matrix_selector,
  subquery,
  call,
  aggregate,
  binary,
  unary,
  paren
};

struct Expr {
  explicit Expr(ExprKind k, std::size_t p) : kind(k), pos(p) {}
  virtual ~Expr() = default;
  Expr(const Expr&) = delete;
  Expr& operator=(const Expr&) = delete;
  [[nodiscard]] ValueType type() const noexcept;

  ExprKind kind;
  std::size_t pos;  // byte offset of the node's first token
};

struct NumberLiteral final : Expr {
  NumberLiteral(std::size_t p, double v) : Expr(ExprKind::number, p), value(v) {}
  double value;
};

struct StringLiteral final : Expr {
  StringLiteral(std::size_t p, std::string v) : Expr(ExprKind::string, p), value(std::move(v)) {}
  std::string value;
};

// `@ <time>`, `@ start()`, `@ end()`.
struct AtModifier {
  enum class Kind { none, time, start, end };
  Kind kind = Kind::none;
  std::int64_t ms = 0;
  [[nodiscard]] bool set() const noexcept { return kind != Kind::none; }
};

struct VectorSelector final : Expr {
  explicit VectorSelector(std::size_t p) : Expr(ExprKind::vector_selector, p) {}
  std::string name;               // "" when given only by matchers
  std::vector<Matcher> matchers;  // includes __name__="name" when named
  std::int64_t offset_ms = 0;
  bool offset_set = false;
  AtModifier at;
};

struct MatrixSelector final : Expr {
  MatrixSelector(std::size_t p, std::unique_ptr<VectorSelector> v, std::int64_t r)
      : Expr(ExprKind::matrix_selector, p), vs(std::move(v)), range_ms(r) {}
  std::unique_ptr<VectorSelector> vs;  // carries offset and @
  std::int64_t range_ms;
};

struct Subquery final : Expr {
  Subquery(std::size_t p, ExprPtr e, std::int64_t r, std::int64_t s)
      : Expr(ExprKind::subquery, p), expr(std::move(e)), range_ms(r), step_ms(s) {}
  ExprPtr expr;
  std::int64_t range_ms;
  std::int64_t step_ms;  // 0: the engine's default evaluation interval
  std::int64_t offset_ms = 0;
  bool offset_set = false;
  AtModifier at;
};

enum class Function {
  abs,
  absent,
  absent_over_time,
  avg_over_time,
  ceil,
  changes,
  clamp,
  clamp_max,
  clamp_min,
  count_over_time,
  delta,
  deriv,
  floor,
  idelta,
  increase,
  irate,
  label_join,
  label_replace,
  last_over_time,
  max_over_time,
  min_over_time,
  predict_linear,
  quantile_over_time,
  rate,
  resets,
  round,
  scalar,
  sort,
  sort_desc,
  stddev_over_time,
  sum_over_time,
  time,
  timestamp,
  vector
};

struct FunctionInfo {
  std::string_view name;
  Function id;
  std::vector<ValueType> args;
  int variadic;  // 0: fixed; n > 0: up to n optional trailing args; -1: any number
  ValueType returns;
};

// The supported function of that name, nullptr when there is none.
[[nodiscard]] const FunctionInfo* find_function(std::string_view name) noexcept;

struct Call final : Expr {
  Call(std::size_t p, const FunctionInfo* f) : Expr(ExprKind::call, p), func(f) {}
  const FunctionInfo* func;
  std::vector<ExprPtr> args;
};

enum class AggregateOp {
  sum,
  avg,
  min,
  max,
  count,
  stddev,
  topk,
  bottomk,
  quantile,
  count_values,
  group
};

struct Aggregate final : Expr {
  Aggregate(std::size_t p, AggregateOp o) : Expr(ExprKind::aggregate, p), op(o) {}
  AggregateOp op;
  ExprPtr expr;
  ExprPtr param;                      // topk, bottomk, quantile, count_values
  std::vector<std::string> grouping;  // sorted
  bool without = false;
};

enum class BinaryOp { add, sub, mul, div, mod, pow, eq, ne, gt, lt, ge, le, land, lor, lunless };
[[nodiscard]] bool is_comparison(BinaryOp op) noexcept;
[[nodiscard]] bool is_set_operator(BinaryOp op) noexcept;

enum class Cardinality { one_to_one, many_to_one, one_to_many, many_to_many };

struct VectorMatching {
  Cardinality card = Cardinality::one_to_one;
  std::vector<std::string> labels;  // of on(...) / ignoring(...)
  bool on = false;
  std::vector<std::string> include;  // of group_left(...) / group_right(...)
};

struct Binary final : Expr {
  Binary(std::size_t p, BinaryOp o) : Expr(ExprKind::binary, p), op(o) {}
  BinaryOp op;
  ExprPtr lhs;
  ExprPtr rhs;
  bool return_bool = false;
  VectorMatching matching;  // meaningful when both sides are vectors
};

struct Unary final : Expr {  // unary minus (unary plus leaves the operand as it is)
  Unary(std::size_t p, ExprPtr e) : Expr(ExprKind::unary, p), expr(std::move(e)) {}
  ExprPtr expr;
};

struct Paren final : Expr {
  Paren(std::size_t p, ExprPtr e) : Expr(ExprKind::paren, p), expr(std::move(e)) {}
  ExprPtr expr;
};

// Parses a query. Throws QueryError (bad_data) whose message is
// Prometheus's "<line>:<col>: parse error: <what>" and whose position() is
// the byte offset; a feature outside the subset is named as not supported.
[[nodiscard]] ExprPtr parse(std::string_view query);

}  // namespace metrics::query
