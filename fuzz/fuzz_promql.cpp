// Fuzzes the PromQL engine: any input either fails to parse with a
// bad_data QueryError whose position lies inside the query, or parses into
// a tree whose instant and range evaluation over a small fixed store either
// succeed with a result of the expression's type (which encodes to JSON) or
// fail with a QueryError. Nothing else may escape, and the sample limit and
// deadline bound the work of any input.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "fuzz_check.hpp"
#include "metrics/query/engine.hpp"
#include "metrics/query/json.hpp"

namespace {

namespace q = metrics::query;

constexpr std::int64_t kNow = 1'700'000'000'000;

const q::MemoryQueryable& store() {
  static const q::MemoryQueryable s = [] {
    q::MemoryQueryable m;
    const char* jobs[] = {"api", "web"};
    for (int i = 0; i < 4; ++i) {
      q::LabelSet counter = q::make_labels(
          {{"__name__", "x_total"}, {"job", jobs[i % 2]}, {"instance", "h" + std::to_string(i)}});
      q::LabelSet gauge =
          q::make_labels({{"__name__", "g"}, {"job", jobs[i % 2]}, {"i", std::to_string(i)}});
      double v = 0;
      for (std::int64_t t = kNow - 3'600'000; t <= kNow; t += 15'000) {
        v += static_cast<double>((t / 15'000 + i) % 5);
        if (i == 3 && (t / 15'000) % 40 == 0) v = 0;  // resets
        m.add(counter, t, v);
        m.add(gauge, t + 7, static_cast<double>((t / 15'000 * (i + 1)) % 97) / 7.0);
      }
    }
    return m;
  }();
  return s;
}

bool type_matches(q::ValueType type, const q::Result& r, bool range) {
  if (range) return std::holds_alternative<q::Matrix>(r);
  switch (type) {
    case q::ValueType::scalar:
      return std::holds_alternative<q::Scalar>(r);
    case q::ValueType::string:
      return std::holds_alternative<q::String>(r);
    case q::ValueType::vector:
      return std::holds_alternative<q::Vector>(r);
    case q::ValueType::matrix:
      return std::holds_alternative<q::Matrix>(r);
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) return 0;
  std::string_view query(reinterpret_cast<const char*>(data), size);
  q::ExprPtr expr;
  try {
    expr = q::parse(query);
  } catch (const q::QueryError& e) {
    FUZZ_CHECK(e.type() == q::ErrorType::bad_data);
    FUZZ_CHECK(e.position().has_value() && *e.position() <= size);
    return 0;
  }
  q::Engine engine(
      {.lookback_delta_ms = 300'000, .default_step_ms = 60'000, .max_samples = 200'000});
  q::QueryControl control{.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2),
                          .cancel = nullptr};
  try {
    q::Result r = engine.instant(store(), *expr, kNow - 600'000, control);
    FUZZ_CHECK(type_matches(expr->type(), r, false));
    FUZZ_CHECK(!q::encode_data(r).empty());
  } catch (const q::QueryError&) {
  }
  try {
    q::Result r = engine.range(store(), *expr, kNow - 1'800'000, kNow, 90'000, control);
    FUZZ_CHECK(type_matches(expr->type(), r, true));
    FUZZ_CHECK(!q::encode_data(r).empty());
  } catch (const q::QueryError& e) {
    FUZZ_CHECK(e.type() != q::ErrorType::canceled);
  }
  return 0;
}
