// Merging repeats inside one batch, before it is applied.
//
// Repeats of one series (type, name and labels) are merged: counter deltas
// are summed (overflow is InvalidInput); for a gauge the last value wins. The result keeps the order
// in which each distinct metric first appeared.
//
//   auto merged = core::merge_batch(core::decode_updates(body).updates);
//
// Pure and thread-safe.
#pragma once

#include <span>
#include <vector>

#include "metrics/core/metric.hpp"

namespace metrics::core {

// Throws InvalidInput when a summed counter delta overflows int64.
[[nodiscard]] std::vector<Update> merge_batch(std::span<const Update> batch);

// Merges `incoming` into `pending` with the same rules, in place; used by the
// agent to keep what it could not send. Returns false (and leaves pending
// unchanged) when a counter sum would overflow.
[[nodiscard]] bool merge_into(std::vector<Update>& pending, std::span<const Update> incoming);

}  // namespace metrics::core
