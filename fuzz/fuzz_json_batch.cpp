// Fuzzes the batch path of POST /updates/: decode_batch, merge_batch and
// encode_batch. Only core::InvalidInput may escape the decoder and the merge;
// whatever is decoded must survive encode → decode unchanged, bit for bit.
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "metrics/core/batch.hpp"
#include "metrics/core/errors.hpp"
#include "metrics/core/json_codec.hpp"
#include "metrics/core/metric.hpp"

namespace {

using metrics::core::Metric;
using metrics::core::MetricType;

bool same(const Metric& a, const Metric& b) {
  return a.id == b.id && a.type == b.type &&
         (a.type == MetricType::counter
              ? a.delta == b.delta
              : std::bit_cast<std::uint64_t>(a.value) == std::bit_cast<std::uint64_t>(b.value));
}

bool same(std::span<const Metric> a, std::span<const Metric> b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!same(a[i], b[i])) return false;
  }
  return true;
}

void check_valid(std::span<const Metric> batch) {
  for (const auto& m : batch) {
    FUZZ_CHECK(!metrics::core::validate_name(m.id));
    if (m.type == MetricType::gauge) FUZZ_CHECK(std::isfinite(m.value));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace core = metrics::core;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // A small item limit, as --max-batch would set it.
  try {
    const auto limited = core::decode_batch(input, 4);
    FUZZ_CHECK(limited.size() <= 4);
  } catch (const core::InvalidInput&) {
  }

  std::vector<Metric> batch;
  try {
    batch = core::decode_batch(input);
  } catch (const core::InvalidInput&) {
    return 0;
  }
  check_valid(batch);

  // Unmerged, the batch reads back element by element.
  const auto encoded = core::encode_batch(batch);
  FUZZ_CHECK(same(core::decode_batch(encoded), batch));

  std::vector<Metric> merged;
  try {
    merged = core::merge_batch(batch);
  } catch (const core::InvalidInput&) {
    return 0;  // a counter sum overflowed
  }
  FUZZ_CHECK(merged.size() <= batch.size());
  check_valid(merged);
  for (std::size_t i = 0; i < merged.size(); ++i) {
    for (std::size_t j = i + 1; j < merged.size(); ++j) {
      FUZZ_CHECK(merged[i].id != merged[j].id || merged[i].type != merged[j].type);
    }
  }
  // Merging is idempotent, and what it answers reads back unchanged.
  FUZZ_CHECK(same(core::merge_batch(merged), merged));
  const auto answer = core::encode_batch(merged);
  FUZZ_CHECK(same(core::decode_batch(answer), merged));

  // The agent's merge_into agrees with merge_batch.
  std::vector<Metric> pending;
  if (core::merge_into(pending, batch)) FUZZ_CHECK(same(pending, merged));
  return 0;
}
