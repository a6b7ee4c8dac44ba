// Fuzzes the batch path of POST /updates/: decode_updates (an array or an
// envelope with labels), merge_batch and the encoders. Only
// core::InvalidInput may escape the decoder and the merge; whatever is
// decoded is valid (names, finite gauges, labels within the contract's
// limits) and survives encode → decode unchanged, bit for bit, labels
// included.
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

using metrics::core::MetricType;
using metrics::core::Update;

bool same(const Update& a, const Update& b) {
  return a.id == b.id && a.type == b.type && a.labels == b.labels &&
         (a.type == MetricType::counter
              ? a.delta == b.delta
              : std::bit_cast<std::uint64_t>(a.value) == std::bit_cast<std::uint64_t>(b.value));
}

bool same(std::span<const Update> a, std::span<const Update> b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!same(a[i], b[i])) return false;
  }
  return true;
}

void check_valid(std::span<const Update> batch) {
  namespace core = metrics::core;
  for (const auto& u : batch) {
    FUZZ_CHECK(!core::validate_name(u.id));
    if (u.type == MetricType::gauge) FUZZ_CHECK(std::isfinite(u.value));
    FUZZ_CHECK(u.labels.size() <= core::kMaxLabels);
    for (core::LabelView l : u.labels) {
      FUZZ_CHECK(!core::validate_label_name(l.name));
      FUZZ_CHECK(!core::validate_label_value(l.name, l.value));
      FUZZ_CHECK(!l.value.empty());
    }
    // The canonical encoding reads back to the same labels.
    FUZZ_CHECK(core::Labels::from_encoded(u.labels.encoded()) == u.labels);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace core = metrics::core;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // A small item limit, as --max-batch would set it.
  try {
    const auto limited = core::decode_updates(input, 4);
    FUZZ_CHECK(limited.updates.size() <= 4);
  } catch (const core::InvalidInput&) {
  }

  core::DecodedBatch decoded;
  try {
    decoded = core::decode_updates(input);
  } catch (const core::InvalidInput&) {
    return 0;
  }
  const auto& batch = decoded.updates;
  check_valid(batch);
  if (!decoded.envelope) FUZZ_CHECK(decoded.labels.empty());

  // Unmerged, the batch reads back element by element, as an array and as
  // an envelope without labels of its own.
  FUZZ_CHECK(same(core::decode_updates(core::encode_updates(batch)).updates, batch));
  const auto as_envelope = core::decode_updates(core::encode_envelope({}, batch));
  FUZZ_CHECK(as_envelope.envelope);
  FUZZ_CHECK(same(as_envelope.updates, batch));

  std::vector<Update> merged;
  try {
    merged = core::merge_batch(batch);
  } catch (const core::InvalidInput&) {
    return 0;  // a counter sum overflowed
  }
  FUZZ_CHECK(merged.size() <= batch.size());
  check_valid(merged);
  for (std::size_t i = 0; i < merged.size(); ++i) {
    for (std::size_t j = i + 1; j < merged.size(); ++j) {
      FUZZ_CHECK(!core::SeriesEqual{}(core::SeriesView(merged[i]), core::SeriesView(merged[j])));
    }
  }
  // Moving the updates in merges the same.
  {
    auto copy = batch;
    FUZZ_CHECK(same(core::merge_batch_moved(std::move(copy)), merged));
  }
  // Merging is idempotent, and what it answers reads back unchanged.
  FUZZ_CHECK(same(core::merge_batch(merged), merged));
  FUZZ_CHECK(same(core::decode_updates(core::encode_updates(merged)).updates, merged));

  // The agent's merge_into agrees with merge_batch.
  std::vector<Update> pending;
  if (core::merge_into(pending, batch)) FUZZ_CHECK(same(pending, merged));
  return 0;
}
