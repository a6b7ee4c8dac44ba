// Round-trip properties of the chunk codec over random and adversarial
// data, and the decoder's behaviour on malformed bytes.
#include "metrics/history/chunk.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace {

using metrics::core::MetricType;
namespace history = metrics::history;
using history::Sample;

std::vector<Sample> encode_decode(MetricType type, const std::vector<Sample>& in,
                                  std::size_t* bytes = nullptr) {
  history::ChunkWriter w(type);
  for (const auto& s : in)
    w.append(s.t_ms, s.bits);
  EXPECT_EQ(w.count(), in.size());
  if (bytes) *bytes = w.bytes().size();
  auto out = history::decode_chunk(type, w.bytes(), w.count());
  EXPECT_TRUE(out.has_value());
  return out.value_or(std::vector<Sample>{});
}

void expect_round_trip(MetricType type, const std::vector<Sample>& in) {
  const auto out = encode_decode(type, in);
  ASSERT_EQ(out.size(), in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    ASSERT_EQ(out[i].t_ms, in[i].t_ms) << "sample " << i;
    ASSERT_EQ(out[i].bits, in[i].bits) << "sample " << i;
  }
  // Continuing a chunk read back gives the same bytes as never stopping.
  if (in.size() >= 2) {
    history::ChunkWriter whole(type), head(type);
    for (const auto& s : in)
      whole.append(s.t_ms, s.bits);
    const std::size_t half = in.size() / 2;
    for (std::size_t i = 0; i < half; ++i)
      head.append(in[i].t_ms, in[i].bits);
    auto resumed =
        history::ChunkWriter::resume(type, head.bytes(), static_cast<std::uint32_t>(half));
    ASSERT_TRUE(resumed.has_value());
    for (std::size_t i = half; i < in.size(); ++i)
      resumed->append(in[i].t_ms, in[i].bits);
    ASSERT_EQ(resumed->bit_size(), whole.bit_size());
    ASSERT_TRUE(std::equal(resumed->bytes().begin(), resumed->bytes().end(), whole.bytes().begin(),
                           whole.bytes().end()));
  }
}

// A checkpoint that checkpoint_before(start) offers is one that a read of
// [start, ...] may begin at: every earlier sample is before start, and a
// reader begun there returns exactly the samples after it.
void expect_checkpoints_hold(MetricType type, const std::vector<Sample>& in, std::size_t m) {
  history::ChunkWriter w(type);
  for (std::size_t i = 0; i < m; ++i)
    w.append(in[i].t_ms, in[i].bits);
  std::vector<std::int64_t> starts{std::numeric_limits<std::int64_t>::min(),
                                   std::numeric_limits<std::int64_t>::max()};
  for (std::size_t i = 0; i < m; i += 1 + m / 16) {
    starts.push_back(in[i].t_ms);
    if (in[i].t_ms != std::numeric_limits<std::int64_t>::max()) starts.push_back(in[i].t_ms + 1);
  }
  std::size_t offered = 0;
  for (const std::int64_t start : starts) {
    const history::ChunkCheckpoint* cp = w.checkpoint_before(start);
    if (cp == nullptr) continue;
    ++offered;
    ASSERT_EQ(cp->count % history::ChunkWriter::kCheckpointEvery, 0U);
    ASSERT_LE(cp->count, m);
    ASSERT_LT(cp->max_t, start);
    for (std::size_t i = 0; i < cp->count; ++i)
      ASSERT_LE(in[i].t_ms, cp->max_t) << "sample " << i;
    history::ChunkReader r(type, w.bytes().subspan(cp->bit / 8), w.count(), *cp);
    std::size_t i = cp->count;
    Sample got;
    while (r.next(got.t_ms, got.bits)) {
      ASSERT_LT(i, m);
      ASSERT_EQ(got, in[i]) << "sample " << i << " from the checkpoint at " << cp->count;
      ++i;
    }
    ASSERT_FALSE(r.failed());
    ASSERT_EQ(i, m);
  }
  // Past the first checkpoint, a start after every sample has one.
  if (m >= history::ChunkWriter::kCheckpointEvery) {
    EXPECT_GT(offered, 0U);
  }
}

std::uint64_t bits_of(double d) {
  return history::gauge_bits(d);
}

TEST(Chunk, EmptyChunkDecodesToNothing) {
  history::ChunkWriter w(MetricType::gauge);
  EXPECT_EQ(w.bytes().size(), 0u);
  const auto out = history::decode_chunk(MetricType::gauge, w.bytes(), 0);
  ASSERT_TRUE(out.has_value());
  EXPECT_TRUE(out->empty());
}

std::string hex(std::span<const std::uint8_t> bytes) {
  static const char* const kDigits = "0123456789abcdef";
  std::string out;
  for (const auto b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

// The format is on disk: these bytes come from the independent Python
// encoder of fuzz/make_seeds.py, and must not change by accident.
TEST(Chunk, GoldenBytes) {
  history::ChunkWriter c(MetricType::counter);
  for (std::int64_t i = 0; i < 8; ++i)
    c.append(1'764'000'000'000 + i * 10'000 + (i * 7) % 3, history::counter_bits(5 * i));
  EXPECT_EQ(hex(c.bytes()), "a7356d2fd0007813036995252a48");
  history::ChunkWriter g(MetricType::gauge);
  for (std::int64_t i = 0; i < 6; ++i)
    g.append(1'764'000'000'000 + i * 10'000 + i % 2,
             bits_of(1.5e6 + 16.0 * static_cast<double>((i * 37) % 101)));
  EXPECT_EQ(hex(g.bytes()), "a7356d2fd000e16a09b71bf02606fa8fb624fa05c7b0d2cc");
  // A quarter-step ramp, then values that leave the quarter units.
  history::ChunkWriter r(MetricType::gauge);
  for (std::int64_t i = 0; i < 6; ++i)
    r.append(1'764'000'000'000 + i * 10'000, bits_of(0.25 * static_cast<double>(i) + 3));
  r.append(5, bits_of(0.1));
  r.append(6, bits_of(-0.0));
  r.append(7, bits_of(0.0));
  r.append(8, bits_of(2.0));
  r.append(9, 0x7ff8000000000001ull);
  EXPECT_EQ(hex(r.bytes()),
            "a7356d2fd000e132007c09817428889f000003356d31a4b5e1fbfd44ccccccccccdf8000019ab698ab517"
            "07f7f73333333333336740000000000000009af9e2fbff8000000000001");
}

TEST(Chunk, SteadyGaugeIsSmall) {
  std::vector<Sample> in;
  for (int i = 0; i < 120; ++i)
    in.push_back({1'764'000'000'000 + i * 10'000, bits_of(42.0)});
  std::size_t bytes = 0;
  EXPECT_EQ(encode_decode(MetricType::gauge, in, &bytes), in);
  // 48 + 25 + value bits for the first two, then 2 bits per sample.
  EXPECT_LT(bytes, 45u);
}

TEST(Chunk, SteadyCounterIsSmall) {
  std::vector<Sample> in;
  for (int i = 0; i < 120; ++i)
    in.push_back({1'764'000'000'000 + i * 10'000, history::counter_bits(5 * i)});
  std::size_t bytes = 0;
  EXPECT_EQ(encode_decode(MetricType::counter, in, &bytes), in);
  EXPECT_LT(bytes, 45u);
}

TEST(Chunk, QuarterRampIsSmall) {
  std::vector<Sample> in;
  for (int i = 0; i < 120; ++i)
    in.push_back({1'764'000'000'000 + i * 10'000, bits_of(50'000.0 + 0.25 * i)});
  std::size_t bytes = 0;
  EXPECT_EQ(encode_decode(MetricType::gauge, in, &bytes), in);
  // 1 bit of time and 3 of value a sample, after the first two.
  EXPECT_LT(bytes, 80u);
}

TEST(Chunk, AdversarialTimestamps) {
  constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  const std::vector<std::int64_t> times{0,
                                        0,
                                        0,
                                        -1,
                                        kMax,
                                        kMin,
                                        kMax,
                                        kMin,
                                        1,
                                        -5,
                                        -5,
                                        1000,
                                        999,
                                        998,
                                        kMax - 1,
                                        kMin + 1,
                                        1'764'000'000'000,
                                        1'763'999'999'000,
                                        42};
  for (const auto type : {MetricType::gauge, MetricType::counter}) {
    std::vector<Sample> in;
    for (std::size_t i = 0; i < times.size(); ++i)
      in.push_back({times[i], i * 7919});
    expect_round_trip(type, in);
  }
}

TEST(Chunk, AdversarialGauges) {
  const double kInf = std::numeric_limits<double>::infinity();
  std::vector<std::uint64_t> values{
      bits_of(0.0),
      bits_of(-0.0),
      bits_of(0.0),
      bits_of(std::numeric_limits<double>::denorm_min()),
      bits_of(-std::numeric_limits<double>::denorm_min()),
      bits_of(std::numeric_limits<double>::min()),
      bits_of(std::numeric_limits<double>::max()),
      bits_of(-std::numeric_limits<double>::max()),
      bits_of(kInf),
      bits_of(-kInf),
      0x7ff8000000000000ull,  // quiet NaN
      0x7ff0000000000001ull,  // signalling NaN, payload 1
      0xfff123456789abcdull,  // negative NaN with a payload
      0x7ff8000000000000ull,
      bits_of(1e-300),
      bits_of(1e300),
      ~std::uint64_t{0},
      0,
      1,
      std::uint64_t{1} << 63,
      0x8000000000000001ull,
  };
  std::vector<Sample> in;
  for (std::size_t i = 0; i < values.size(); ++i)
    in.push_back({static_cast<std::int64_t>(i) * 10'000, values[i]});
  expect_round_trip(MetricType::gauge, in);
  // -0.0 stays -0.0, not 0.0.
  const auto out = encode_decode(MetricType::gauge, in);
  EXPECT_TRUE(std::signbit(out[1].gauge()));
  EXPECT_EQ(out[12].bits, 0xfff123456789abcdull);
}

TEST(Chunk, CountersNearTheLimits) {
  constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  const std::vector<std::int64_t> totals{kMax, kMax,     kMax - 1, kMin,     kMin + 1, 0,
                                         -1,   kMax,     kMin,     kMax,     -7,       -700,
                                         5,    kMax - 3, kMax,     kMax - 1, 1,        0};
  std::vector<Sample> in;
  for (std::size_t i = 0; i < totals.size(); ++i)
    in.push_back({static_cast<std::int64_t>(i) * 10'000, history::counter_bits(totals[i])});
  expect_round_trip(MetricType::counter, in);
  const auto out = encode_decode(MetricType::counter, in);
  EXPECT_EQ(out[0].counter(), kMax);
  EXPECT_EQ(out[3].counter(), kMin);
}

// t + d modulo 2^64, as the codec computes (a plain += would overflow).
std::int64_t wrap_add(std::int64_t t, std::uint64_t d) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(t) + d);
}

// Random values of every shape: full-width bits, small deltas, repeats.
TEST(Chunk, RandomRoundTrips) {
  std::mt19937_64 rng(12345);
  for (int round = 0; round < 400; ++round) {
    for (const auto type : {MetricType::gauge, MetricType::counter}) {
      const std::size_t n = 1 + rng() % 300;
      std::vector<Sample> in;
      std::int64_t t = static_cast<std::int64_t>(rng());
      std::uint64_t v = rng();
      const int mode = round % 5;
      for (std::size_t i = 0; i < n; ++i) {
        switch (mode) {
          case 0:  // anything at all
            t = static_cast<std::int64_t>(rng());
            v = rng();
            break;
          case 1:  // 10 s with jitter, slowly moving values
            t = wrap_add(t, 10'000 + rng() % 7 - 3);
            v = type == MetricType::gauge ? bits_of(1e6 + static_cast<double>(rng() % 4096) * 16.0)
                                          : v + rng() % 10;
            break;
          case 2:  // repeats and backwards steps
            if (rng() % 3 == 0) t = wrap_add(t, 0 - rng() % 100'000);
            if (rng() % 2 == 0) v = rng() % 4;
            break;
          case 3:  // huge jumps in both directions
          {
            const std::uint64_t step = rng() >> (rng() % 64);
            t = wrap_add(t, rng() % 2 ? step : 0 - step);
          }
            v ^= std::uint64_t{1} << (rng() % 64);
            break;
          default: {  // random doubles of every magnitude
            double d = std::ldexp(static_cast<double>(rng() % 1'000'000) - 500'000.0,
                                  static_cast<int>(rng() % 2000) - 1000);
            v = bits_of(d);
            t = wrap_add(t, rng() % 3);
            break;
          }
        }
        in.push_back({t, v});
      }
      expect_round_trip(type, in);
      if (HasFatalFailure()) return;
      expect_checkpoints_hold(type, in, in.size());
      expect_checkpoints_hold(type, in, in.size() / 2 + 1);
      if (HasFatalFailure()) return;
    }
  }
}

TEST(Chunk, TruncatedBytesFailCleanly) {
  history::ChunkWriter w(MetricType::gauge);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 50; ++i)
    w.append(i * 10'000, rng());
  const std::vector<std::uint8_t> all(w.bytes().begin(), w.bytes().end());
  for (std::size_t cut = 0; cut + 1 < all.size(); ++cut) {
    const std::span<const std::uint8_t> part(all.data(), cut);
    EXPECT_FALSE(history::decode_chunk(MetricType::gauge, part, 50).has_value()) << cut;
  }
  // More samples than were written is malformed too.
  EXPECT_FALSE(history::decode_chunk(MetricType::gauge, all, 51 + 8 * 1000).has_value());
}

TEST(Chunk, MalformedWindowIsRejected) {
  // First sample: 6-bit length 0 (1 bit), timestamp bit, then '10' for the
  // value: a reuse of an XOR window that does not exist yet.
  const std::vector<std::uint8_t> bytes{0b00000001, 0b00000000};
  history::ChunkReader r(MetricType::gauge, bytes, 1);
  std::int64_t t = 0;
  std::uint64_t v = 0;
  EXPECT_FALSE(r.next(t, v));
  EXPECT_TRUE(r.failed());
}

TEST(Chunk, RandomBytesNeverCrash) {
  std::mt19937_64 rng(99);
  int decoded = 0;
  for (int i = 0; i < 5000; ++i) {
    std::vector<std::uint8_t> bytes(rng() % 64);
    for (auto& b : bytes)
      b = static_cast<std::uint8_t>(rng());
    const auto type = i % 2 ? MetricType::gauge : MetricType::counter;
    const auto count = static_cast<std::uint32_t>(rng() % 40);
    if (auto out = history::decode_chunk(type, bytes, count)) {
      ++decoded;
      // What decodes re-encodes to the same samples.
      EXPECT_EQ(encode_decode(type, *out), *out);
    }
  }
  EXPECT_GT(decoded, 0);
}

TEST(Chunk, RecordRoundTripAndRejection) {
  history::ChunkWriter w(MetricType::counter);
  for (int i = 0; i < 10; ++i)
    w.append(i * 1000, history::counter_bits(i * i));
  std::string rec;
  history::append_chunk_record(rec, w.type(), w.count(), w.bytes());
  rec += "trailing";
  const std::span<const std::uint8_t> in(reinterpret_cast<const std::uint8_t*>(rec.data()),
                                         rec.size());
  std::size_t used = 0;
  const auto parsed = history::parse_chunk_record(in, used);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(used, rec.size() - 8);
  EXPECT_EQ(parsed->type, MetricType::counter);
  EXPECT_EQ(parsed->count, 10u);
  for (std::size_t cut = 0; cut < used; ++cut)
    EXPECT_FALSE(history::parse_chunk_record(in.first(cut), used).has_value()) << cut;
  std::string bad = rec;
  bad[0] = 2;  // no such type
  EXPECT_FALSE(history::parse_chunk_record(
                   {reinterpret_cast<const std::uint8_t*>(bad.data()), bad.size()}, used)
                   .has_value());
}

}  // namespace
