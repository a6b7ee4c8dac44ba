// The chunk codec. Bits are written most significant first; every length
// a decoder reads is checked before it is used as a shift or a count.
#include "metrics/history/chunk.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <utility>

namespace metrics::history {
namespace {

// A delta-of-delta is coded as its zigzag value zz in the first bucket that
// holds it: a unary prefix of `i` ones and a zero (the last bucket has no
// zero), then zz - base in `width` bits. Bucket 0 is the single bit '0' for
// zz == 0: a steady interval, or a counter growing at a steady rate.
struct Bucket {
  unsigned width;
  std::uint64_t base;
};
// Timestamps: the error of the predicted interval; a few ms of jitter
// lands in buckets 0-2.
constexpr std::array<Bucket, 6> kTimeBuckets{{{0, 0}, {2, 1}, {4, 5}, {9, 21}, {20, 533}, {64, 0}}};
// Counter totals: steady or small changing deltas.
constexpr std::array<Bucket, 6> kCounterBuckets{
    {{0, 0}, {4, 1}, {8, 17}, {16, 273}, {32, 65809}, {64, 0}}};

constexpr std::uint64_t zigzag(std::uint64_t v) noexcept {
  return (v << 1) ^ static_cast<std::uint64_t>(static_cast<std::int64_t>(v) >> 63);
}
constexpr std::uint64_t unzigzag(std::uint64_t z) noexcept {
  return (z >> 1) ^ (0 - (z & 1));
}

// The interval the next timestamp is predicted to follow: the last one,
// rounded to 10 ms. Timestamps are the server's receive times, so they
// always carry a few ms of jitter around the sender's (round) interval:
// against the rounded interval the error is j[n] - j[n-1], where the plain
// delta-of-delta would code j[n] - 2 j[n-1] + j[n-2], with 3x the variance
// (docs/HISTORY.md has the measurements). Any deterministic function keeps
// the round trip exact; this one is computed modulo 2^64 like the rest.
constexpr std::uint64_t predict_interval(std::uint64_t prev_dt) noexcept {
  const auto d = static_cast<std::int64_t>(prev_dt);
  const std::int64_t q = d / 10;
  const std::int64_t r = d % 10;  // in (-10, 10)
  auto p = static_cast<std::uint64_t>(q * 10);
  if (r >= 5) p += 10;
  if (r <= -5) p -= 10;
  return p;
}

// Gauges whose values are multiples of 1/4 (integers: bytes, counts; and
// halves and quarters) are often ramps or walks that XOR codes poorly: for
// them the quarter-unit integer k = 4v is delta-of-delta coded instead, when
// that is shorter. 4v is exact for every finite double; -0.0 is left out
// because k = 0 would bring back +0.0.
constexpr double kFixedScale = 4.0;
constexpr double kFixedLimit = 9007199254740992.0;  // 2^53: k and k / 4 exact

bool to_fixed(std::uint64_t bits, std::int64_t& k) noexcept {
  if (bits == 0x8000000000000000ull) return false;
  const double q = std::bit_cast<double>(bits) * kFixedScale;
  if (!(std::fabs(q) <= kFixedLimit)) return false;
  // |q| <= 2^53: the conversion is exact for an integer and truncates
  // anything else (cheaper than std::trunc, a library call without SSE4.1).
  k = static_cast<std::int64_t>(q);
  return static_cast<double>(k) == q;
}

// The bits put_dod writes for a zigzag value.
template <std::size_t N>
unsigned dod_cost(const std::array<Bucket, N>& buckets, std::uint64_t zz) noexcept {
  if (zz == 0) return 1;
  for (std::size_t i = 1; i + 1 < N; ++i)
    if (zz - buckets[i].base < (std::uint64_t{1} << buckets[i].width))
      return static_cast<unsigned>(i + 1) + buckets[i].width;
  return static_cast<unsigned>(N - 1) + 64;
}

constexpr unsigned bit_width64(std::uint64_t v) noexcept {
  return static_cast<unsigned>(std::bit_width(v));
}

}  // namespace

void ChunkWriter::put(std::uint64_t value, unsigned nbits) {
  if (synced_ != 0) {
    buf_.resize(buf_.size() - synced_);
    synced_ = 0;
  }
  if (nbits == 0) return;
  if (nbits < 64) value &= (std::uint64_t{1} << nbits) - 1;
  bits_ += nbits;
  const unsigned space = 64 - acc_n_;
  if (nbits < space) {
    acc_ = (acc_ << nbits) | value;
    acc_n_ += nbits;
    return;
  }
  const unsigned rest = nbits - space;  // < 64
  const std::uint64_t word = (space == 64 ? 0 : acc_ << space) | (value >> rest);
  for (int shift = 56; shift >= 0; shift -= 8)
    buf_.push_back(static_cast<std::uint8_t>(word >> shift));
  acc_ = rest == 0 ? 0 : value & ((std::uint64_t{1} << rest) - 1);
  acc_n_ = rest;
}

std::span<const std::uint8_t> ChunkWriter::bytes() const {
  if (synced_ == 0 && acc_n_ > 0) {
    const std::uint64_t aligned = acc_ << (64 - acc_n_);
    const std::size_t n = (acc_n_ + 7) / 8;
    for (std::size_t i = 0; i < n; ++i)
      buf_.push_back(static_cast<std::uint8_t>(aligned >> (56 - 8 * i)));
    synced_ = static_cast<std::uint32_t>(n);
  }
  return buf_;
}

void ChunkWriter::put_dod(std::uint64_t dod, bool counter_value) {
  const auto& buckets = counter_value ? kCounterBuckets : kTimeBuckets;
  const std::uint64_t zz = zigzag(dod);
  if (zz == 0) {
    put(0, 1);
    return;
  }
  for (std::size_t i = 1; i + 1 < buckets.size(); ++i) {
    const auto& b = buckets[i];
    if (zz - b.base < (std::uint64_t{1} << b.width)) {
      // i ones then a zero, then the offset.
      put(((std::uint64_t{1} << i) - 1) << 1, static_cast<unsigned>(i + 1));
      put(zz - b.base, b.width);
      return;
    }
  }
  put((std::uint64_t{1} << (buckets.size() - 1)) - 1, static_cast<unsigned>(buckets.size() - 1));
  put(zz, 64);
}

void ChunkWriter::append(std::int64_t t_ms, std::uint64_t v) {
  auto& s = state_;
  const auto t = static_cast<std::uint64_t>(t_ms);
  if (s.count == 0) {
    // The first timestamp: its zigzag value's bit length (1..64, as n-1 in
    // 6 bits), then the value: 48 bits for today's milliseconds.
    const std::uint64_t zz = zigzag(t);
    const unsigned n = std::max(1u, bit_width64(zz));
    put(n - 1, 6);
    put(zz, n);
    s.min_t = s.max_t = s.first_t = t_ms;
    s.prev_dt = 0;
  } else {
    const std::uint64_t dt = t - s.prev_t;
    put_dod(dt - predict_interval(s.prev_dt), false);
    s.prev_dt = dt;
    s.min_t = std::min(s.min_t, t_ms);
    s.max_t = std::max(s.max_t, t_ms);
  }
  s.prev_t = t;

  if (type_ == core::MetricType::counter) {
    // The first total is coded against 0, like any other.
    const std::uint64_t dv = v - s.prev_v;
    put_dod(dv - s.prev_dv, true);
    s.prev_dv = dv;
  } else {
    // '0' same value; '10' quarter-unit delta-of-delta; '110' XOR in the
    // last window; '111' XOR with a new window (5 bits leading zeros, 6 bits
    // length).
    const std::uint64_t x = v ^ s.prev_v;
    std::int64_t k_prev = 0, k = 0;
    const bool fixed = s.count > 0 && to_fixed(s.prev_v, k_prev) && to_fixed(v, k);
    if (x == 0) {
      put(0, 1);
    } else {
      unsigned lead = static_cast<unsigned>(std::countl_zero(x));
      const unsigned trail = static_cast<unsigned>(std::countr_zero(x));
      if (lead > 31) lead = 31;  // 5 bits
      const bool reuse = s.leading != 0xff && lead >= s.leading && trail >= s.trailing;
      const unsigned xor_cost =
          reuse ? 3 + 64u - s.leading - s.trailing : 3 + 11 + 64 - lead - trail;
      const std::uint64_t dod =
          static_cast<std::uint64_t>(k) - static_cast<std::uint64_t>(k_prev) - s.prev_dv;
      if (fixed && 2 + dod_cost(kCounterBuckets, zigzag(dod)) <= xor_cost) {
        put(0b10, 2);
        put_dod(dod, true);
      } else if (reuse) {
        put(0b110, 3);
        put(x >> s.trailing, 64u - s.leading - s.trailing);
      } else {
        const unsigned sig = 64 - lead - trail;
        put(0b111, 3);
        put(lead, 5);
        put(sig & 63u, 6);  // 64 is written as 0
        put(x >> trail, sig);
        s.leading = static_cast<std::uint8_t>(lead);
        s.trailing = static_cast<std::uint8_t>(trail);
      }
    }
    s.prev_dv = fixed ? static_cast<std::uint64_t>(k) - static_cast<std::uint64_t>(k_prev) : 0;
  }
  s.prev_v = v;
  ++s.count;
  if (s.count % kCheckpointEvery == 0 && bits_ <= UINT32_MAX) {
    checkpoints_[0] = checkpoints_[1];
    checkpoints_[1] = ChunkCheckpoint{.prev_t = s.prev_t,
                                      .prev_dt = s.prev_dt,
                                      .prev_v = s.prev_v,
                                      .prev_dv = s.prev_dv,
                                      .max_t = s.max_t,
                                      .count = s.count,
                                      .bit = static_cast<std::uint32_t>(bits_),
                                      .leading = s.leading,
                                      .trailing = s.trailing};
  }
}

std::vector<std::uint8_t> ChunkWriter::release() {
  (void)bytes();
  std::vector<std::uint8_t> out = std::move(buf_);
  buf_ = {};
  synced_ = 0;
  acc_ = 0;
  acc_n_ = 0;
  bits_ = 0;
  state_ = {};
  checkpoints_ = {};
  return out;
}

std::optional<ChunkWriter> ChunkWriter::resume(core::MetricType type,
                                               std::span<const std::uint8_t> bytes,
                                               std::uint32_t count) {
  ChunkReader reader(type, bytes, count);
  std::int64_t t = 0;
  std::uint64_t v = 0;
  while (reader.next(t, v)) {
  }
  if (reader.failed() || reader.state().count != count) return std::nullopt;
  ChunkWriter w(type);
  w.state_ = reader.state();
  w.bits_ = reader.bit_position();
  const std::size_t whole = w.bits_ / 8;
  w.buf_.assign(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(whole));
  // The bits of a last, partly used byte go back to the register.
  if (const unsigned used = static_cast<unsigned>(w.bits_ % 8); used != 0) {
    w.acc_ = std::uint64_t{bytes[whole]} >> (8 - used);
    w.acc_n_ = used;
  }
  return w;
}

ChunkReader::ChunkReader(core::MetricType type, std::span<const std::uint8_t> bytes,
                         std::uint32_t count, const ChunkCheckpoint& from) noexcept
    : type_(type), bytes_(bytes), count_(count), pos_(from.bit % 8) {
  state_.count = from.count;
  state_.leading = from.leading;
  state_.trailing = from.trailing;
  state_.prev_t = from.prev_t;
  state_.prev_dt = from.prev_dt;
  state_.prev_v = from.prev_v;
  state_.prev_dv = from.prev_dv;
  state_.min_t = state_.max_t = state_.first_t = static_cast<std::int64_t>(from.prev_t);
  // What next() would have computed when it decoded prev_v.
  if (type == core::MetricType::gauge) prev_fixed_ = to_fixed(from.prev_v, prev_k_);
}

inline bool ChunkReader::get(unsigned nbits, std::uint64_t& out) noexcept {
  const std::size_t at = pos_ / 8;
  const auto used = static_cast<unsigned>(pos_ % 8);
  // Fast path: the bits lie within 8 readable bytes; one big-endian load.
  if (nbits != 0 && used + nbits <= 64 && at + 8 <= bytes_.size()) {
    std::uint64_t word = 0;
    std::memcpy(&word, bytes_.data() + at, sizeof word);
    if constexpr (std::endian::native == std::endian::little) word = __builtin_bswap64(word);
    out = (word << used) >> (64 - nbits);
    pos_ += nbits;
    return true;
  }
  return get_slow(nbits, out);
}

bool ChunkReader::get_slow(unsigned nbits, std::uint64_t& out) noexcept {
  if (nbits > bytes_.size() * 8 - pos_) {
    failed_ = true;
    return false;
  }
  std::uint64_t v = 0;
  while (nbits > 0) {
    const unsigned u = static_cast<unsigned>(pos_ % 8);
    const unsigned avail = 8 - u;
    const unsigned take = nbits < avail ? nbits : avail;
    const unsigned byte = bytes_[pos_ / 8];
    const unsigned part = (byte >> (avail - take)) & ((1u << take) - 1);
    v = (v << take) | part;
    nbits -= take;
    pos_ += take;
  }
  out = v;
  return true;
}

bool ChunkReader::get_dod(std::uint64_t& out, bool counter_value) noexcept {
  const auto& buckets = counter_value ? kCounterBuckets : kTimeBuckets;
  constexpr unsigned kMaxOnes = kTimeBuckets.size() - 1;
  static_assert(kCounterBuckets.size() - 1 == kMaxOnes);
  std::size_t ones = 0;
  if (bytes_.size() * 8 - pos_ >= kMaxOnes) {
    // The unary prefix in one read: its ones and the '0' that ends it
    // (none after the last bucket's ones).
    std::uint64_t prefix = 0;
    (void)get(kMaxOnes, prefix);
    ones = static_cast<std::size_t>(std::countl_one(prefix << (64 - kMaxOnes)));
    if (ones > kMaxOnes) ones = kMaxOnes;
    pos_ -= kMaxOnes - ones - (ones < kMaxOnes ? 1 : 0);
  } else {
    std::uint64_t bit = 0;
    while (ones + 1 < buckets.size()) {
      if (!get(1, bit)) return false;
      if (bit == 0) break;
      ++ones;
    }
  }
  std::uint64_t zz = 0;
  if (ones == 0) {
    zz = 0;
  } else {
    const auto& b = buckets[ones];
    std::uint64_t offset = 0;
    if (!get(b.width, offset)) return false;
    zz = offset + b.base;
  }
  out = unzigzag(zz);
  return true;
}

bool ChunkReader::next(std::int64_t& t_ms, std::uint64_t& value_bits) noexcept {
  if (failed_ || state_.count >= count_) return false;
  auto& s = state_;
  std::uint64_t t = 0;
  if (s.count == 0) {
    std::uint64_t n1 = 0, zz = 0;
    if (!get(6, n1) || !get(static_cast<unsigned>(n1) + 1, zz)) return false;
    t = unzigzag(zz);
    s.prev_dt = 0;
  } else {
    std::uint64_t dod = 0;
    if (!get_dod(dod, false)) return false;
    const std::uint64_t dt = predict_interval(s.prev_dt) + dod;
    t = s.prev_t + dt;
    s.prev_dt = dt;
  }

  std::uint64_t v = 0;
  if (type_ == core::MetricType::counter) {
    std::uint64_t dod = 0;
    if (!get_dod(dod, true)) return false;
    const std::uint64_t dv = s.prev_dv + dod;
    v = s.prev_v + dv;
    s.prev_dv = dv;
  } else {
    std::uint64_t bit = 0;
    bool quarter = false;
    if (!get(1, bit)) return false;
    if (bit == 0) {
      v = s.prev_v;
    } else {
      if (!get(1, bit)) return false;
      if (bit == 0) {  // '10': quarter units
        // to_fixed(prev_v), computed when prev_v was decoded.
        const std::int64_t k_prev = prev_k_;
        std::uint64_t dod = 0;
        if (s.count == 0 || !prev_fixed_ || !get_dod(dod, true)) {
          failed_ = true;
          return false;
        }
        const auto k =
            static_cast<std::int64_t>(static_cast<std::uint64_t>(k_prev) + s.prev_dv + dod);
        if (k > static_cast<std::int64_t>(kFixedLimit) ||
            k < -static_cast<std::int64_t>(kFixedLimit)) {
          failed_ = true;
          return false;
        }
        // k / 4 is exact (|k| <= 2^53), so to_fixed(v) would give k back.
        v = std::bit_cast<std::uint64_t>(static_cast<double>(k) * (1.0 / kFixedScale));
        s.prev_dv = static_cast<std::uint64_t>(k) - static_cast<std::uint64_t>(k_prev);
        prev_k_ = k;
        quarter = true;
      } else {
        if (!get(1, bit)) return false;
        std::uint64_t x = 0;
        if (bit == 0) {             // '110'
          if (s.leading == 0xff) {  // needs a window from an earlier '111'
            failed_ = true;
            return false;
          }
          if (!get(64u - s.leading - s.trailing, x)) return false;
          x <<= s.trailing;
        } else {  // '111'
          std::uint64_t lead = 0, sig = 0;
          if (!get(5, lead) || !get(6, sig)) return false;
          if (sig == 0) sig = 64;
          if (lead + sig > 64) {
            failed_ = true;
            return false;
          }
          const auto trail = static_cast<unsigned>(64 - lead - sig);
          if (!get(static_cast<unsigned>(sig), x)) return false;
          x = trail == 64 ? 0 : x << trail;
          s.leading = static_cast<std::uint8_t>(lead);
          s.trailing = static_cast<std::uint8_t>(trail);
        }
        v = s.prev_v ^ x;
        if (x == 0) {  // a '0' written the long way: valid, but not ours
          failed_ = true;
          return false;
        }
      }
    }
    // The writer's prev_dv: k - k_prev when both values are in quarter
    // units ('10' has set it). An unchanged value ('0') keeps prev_k_ and
    // gives 0 either way.
    if (!quarter && (v != s.prev_v || s.count == 0)) {
      std::int64_t k = 0;
      const bool fixed = to_fixed(v, k);
      s.prev_dv = s.count > 0 && prev_fixed_ && fixed
                      ? static_cast<std::uint64_t>(k) - static_cast<std::uint64_t>(prev_k_)
                      : 0;
      prev_fixed_ = fixed;
      prev_k_ = k;
    } else if (!quarter) {
      s.prev_dv = 0;
    }
  }

  const auto ts = static_cast<std::int64_t>(t);
  if (s.count == 0) {
    s.min_t = s.max_t = s.first_t = ts;
  } else {
    s.min_t = std::min(s.min_t, ts);
    s.max_t = std::max(s.max_t, ts);
  }
  s.prev_t = t;
  s.prev_v = v;
  ++s.count;
  t_ms = ts;
  value_bits = v;
  return true;
}

std::optional<std::vector<Sample>> decode_chunk(core::MetricType type,
                                                std::span<const std::uint8_t> bytes,
                                                std::uint32_t count) {
  // Every sample takes at least 2 bits: a count the bytes cannot hold is
  // malformed, and must not size an allocation.
  if (count > bytes.size() * 4) return std::nullopt;
  std::vector<Sample> out;
  out.reserve(count);
  ChunkReader reader(type, bytes, count);
  Sample s;
  while (reader.next(s.t_ms, s.bits))
    out.push_back(s);
  if (reader.failed() || out.size() != count) return std::nullopt;
  return out;
}

namespace {

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool get_varint(std::span<const std::uint8_t> in, std::size_t& pos, std::uint64_t& v) {
  v = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (pos >= in.size()) return false;
    const std::uint8_t b = in[pos++];
    v |= std::uint64_t{b & 0x7fu} << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

}  // namespace

void append_chunk_record(std::string& out, core::MetricType type, std::uint32_t count,
                         std::span<const std::uint8_t> bytes) {
  out.push_back(static_cast<char>(type));
  put_varint(out, count);
  put_varint(out, bytes.size());
  out.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

std::optional<ChunkRecord> parse_chunk_record(std::span<const std::uint8_t> in, std::size_t& used) {
  std::size_t pos = 0;
  if (in.empty() || in[0] > 1) return std::nullopt;
  ChunkRecord r;
  r.type = static_cast<core::MetricType>(in[0]);
  pos = 1;
  std::uint64_t count = 0, length = 0;
  if (!get_varint(in, pos, count) || !get_varint(in, pos, length)) return std::nullopt;
  if (count > UINT32_MAX || length > in.size() - pos) return std::nullopt;
  r.count = static_cast<std::uint32_t>(count);
  r.bytes = in.subspan(pos, static_cast<std::size_t>(length));
  if (!decode_chunk(r.type, r.bytes, r.count)) return std::nullopt;
  used = pos + static_cast<std::size_t>(length);
  return r;
}

}  // namespace metrics::history
