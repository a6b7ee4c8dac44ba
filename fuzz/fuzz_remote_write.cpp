// Fuzzes the remote-write 1.0 decoder (POST /api/v1/write bodies): snappy
// block decompression, the protobuf WriteRequest decoder and validation
// against the project's label rules. Properties: only core::InvalidInput
// (and InflateLimitExceeded from snappy) escape; the decoded request
// re-encodes to bytes that decode to the same labels, samples (bit for bit)
// and metadata, and re-encoding is a fixed point; validated series carry
// exactly the raw labels (less __name__ and empty values) and re-encode
// through the model's encoder and validate to the same series.
//
// Input: byte 0 bit 0 set = the rest is a snappy block (inflated with a
// 1 MiB limit), clear = the rest is the protobuf itself; bits 1-2 choose
// decoder limits (default, or small ones so that the limit paths run).
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "metrics/core/errors.hpp"
#include "metrics/core/gzip.hpp"
#include "metrics/core/metric.hpp"
#include "metrics/exposition/remote_write.hpp"
#include "metrics/exposition/snappy_block.hpp"

namespace {

namespace core = metrics::core;
namespace ex = metrics::exposition;

std::string reencode(const ex::WriteRequestView& req) {
  std::string out;
  for (const auto& s : req.series)
    ex::append_series(out, req.labels_of(s), req.samples_of(s));
  for (const auto& m : req.metadata)
    ex::append_metadata(out, m);
  return out;
}

bool same(const ex::WriteRequestView& a, const ex::WriteRequestView& b) {
  if (a.series.size() != b.series.size() || a.metadata.size() != b.metadata.size()) return false;
  for (std::size_t i = 0; i < a.series.size(); ++i) {
    const auto la = a.labels_of(a.series[i]);
    const auto lb = b.labels_of(b.series[i]);
    if (!std::equal(la.begin(), la.end(), lb.begin(), lb.end())) return false;
    const auto sa = a.samples_of(a.series[i]);
    const auto sb = b.samples_of(b.series[i]);
    if (!std::equal(sa.begin(), sa.end(), sb.begin(), sb.end(), [](const auto& x, const auto& y) {
          return std::bit_cast<std::uint64_t>(x.value) == std::bit_cast<std::uint64_t>(y.value) &&
                 x.timestamp_ms == y.timestamp_ms;
        })) {
      return false;
    }
  }
  for (std::size_t i = 0; i < a.metadata.size(); ++i) {
    const auto& x = a.metadata[i];
    const auto& y = b.metadata[i];
    if (x.type != y.type || x.family_name != y.family_name || x.help != y.help ||
        x.unit != y.unit) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t mode = data[0];
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

  ex::DecodeLimits limits;
  if ((mode >> 1) & 3) {
    limits.max_series = 4;
    limits.max_samples = 8;
    limits.max_labels_per_series = 5;
    limits.max_metadata = 2;
    limits.max_group_depth = 3;
  }

  std::string inflated;
  if (mode & 1) {
    try {
      ex::snappy_decompress(input, 1 << 20, inflated);
      FUZZ_CHECK(inflated.size() <= (1U << 20));
    } catch (const core::InvalidInput&) {
      return 0;
    } catch (const core::InflateLimitExceeded&) {
      return 0;
    }
    input = inflated;
  }

  ex::WriteRequestView req;
  try {
    req = ex::decode_write_request(input, limits);
  } catch (const core::InvalidInput&) {
    return 0;
  }
  FUZZ_CHECK(req.series.size() <= limits.max_series);
  FUZZ_CHECK(req.samples.size() <= limits.max_samples);
  for (const auto& s : req.series)
    FUZZ_CHECK(s.label_count <= limits.max_labels_per_series);

  // Decode -> encode -> decode keeps everything; encoding is then a fixed point.
  const std::string again = reencode(req);
  // Canonical varints and left-out defaults never make it longer.
  FUZZ_CHECK(again.size() <= input.size());
  const auto req2 = ex::decode_write_request(again, limits);
  FUZZ_CHECK(same(req, req2));
  FUZZ_CHECK(reencode(req2) == again);
  // And through snappy.
  FUZZ_CHECK(ex::snappy_decompress(ex::snappy_compress(again), again.size()) == again);

  std::vector<ex::ValidSeries> valid;
  try {
    valid = ex::validate(req);
  } catch (const core::InvalidInput&) {
    return 0;
  }
  // The validated labels are exactly the raw ones, less __name__ and empty
  // values (nothing smuggled in or lost through core's encoding).
  std::size_t next = 0;
  for (const auto& raw : req.series) {
    if (raw.sample_count == 0) continue;
    FUZZ_CHECK(next < valid.size());
    const auto& v = valid[next++];
    std::size_t present = 0;
    for (const auto& l : req.labels_of(raw)) {
      if (l.name == ex::kNameLabel) {
        FUZZ_CHECK(l.value == v.name);
      } else if (!l.value.empty()) {
        ++present;
        FUZZ_CHECK(v.labels.get(l.name) == l.value);
      }
    }
    FUZZ_CHECK(present == v.labels.size());
  }
  FUZZ_CHECK(next == valid.size());

  std::string model;
  for (const auto& s : valid) {
    FUZZ_CHECK(!core::validate_name(s.name));
    FUZZ_CHECK(!s.samples.empty());
    for (std::size_t k = 1; k < s.samples.size(); ++k)
      FUZZ_CHECK(s.samples[k - 1].timestamp_ms < s.samples[k].timestamp_ms);
    ex::append_series(model, s.name, s.labels, s.samples);
  }
  ex::DecodeLimits lax;
  const auto model_req = ex::decode_write_request(model, lax);
  const auto valid2 = ex::validate(model_req);
  FUZZ_CHECK(valid2.size() == valid.size());
  for (std::size_t i = 0; i < valid.size(); ++i) {
    FUZZ_CHECK(valid2[i].name == valid[i].name);
    FUZZ_CHECK(valid2[i].labels == valid[i].labels);
    FUZZ_CHECK(valid2[i].samples.size() == valid[i].samples.size());
    for (std::size_t k = 0; k < valid[i].samples.size(); ++k) {
      FUZZ_CHECK(std::bit_cast<std::uint64_t>(valid2[i].samples[k].value) ==
                 std::bit_cast<std::uint64_t>(valid[i].samples[k].value));
      FUZZ_CHECK(valid2[i].samples[k].timestamp_ms == valid[i].samples[k].timestamp_ms);
    }
  }
  return 0;
}
