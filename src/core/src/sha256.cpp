#include "metrics/core/sha256.hpp"

#include <string.h>  // explicit_bzero

#include <algorithm>
#include <atomic>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define METRICS_SHA256_X86 1
#endif

namespace metrics::core {
namespace {

constexpr std::array<std::uint32_t, 64> kRound = {
    0x428a2f98U, 0x71374491U, 0xb5c0fbcfU, 0xe9b5dba5U, 0x3956c25bU, 0x59f111f1U, 0x923f82a4U,
    0xab1c5ed5U, 0xd807aa98U, 0x12835b01U, 0x243185beU, 0x550c7dc3U, 0x72be5d74U, 0x80deb1feU,
    0x9bdc06a7U, 0xc19bf174U, 0xe49b69c1U, 0xefbe4786U, 0x0fc19dc6U, 0x240ca1ccU, 0x2de92c6fU,
    0x4a7484aaU, 0x5cb0a9dcU, 0x76f988daU, 0x983e5152U, 0xa831c66dU, 0xb00327c8U, 0xbf597fc7U,
    0xc6e00bf3U, 0xd5a79147U, 0x06ca6351U, 0x14292967U, 0x27b70a85U, 0x2e1b2138U, 0x4d2c6dfcU,
    0x53380d13U, 0x650a7354U, 0x766a0abbU, 0x81c2c92eU, 0x92722c85U, 0xa2bfe8a1U, 0xa81a664bU,
    0xc24b8b70U, 0xc76c51a3U, 0xd192e819U, 0xd6990624U, 0xf40e3585U, 0x106aa070U, 0x19a4c116U,
    0x1e376c08U, 0x2748774cU, 0x34b0bcb5U, 0x391c0cb3U, 0x4ed8aa4aU, 0x5b9cca4fU, 0x682e6ff3U,
    0x748f82eeU, 0x78a5636fU, 0x84c87814U, 0x8cc70208U, 0x90befffaU, 0xa4506cebU, 0xbef9a3f7U,
    0xc67178f2U};

constexpr std::uint32_t rotr(std::uint32_t x, unsigned n) noexcept {
  return (x >> n) | (x << (32U - n));
}

std::uint32_t load_be32(const unsigned char* p) noexcept {
  return (std::uint32_t{p[0]} << 24U) | (std::uint32_t{p[1]} << 16U) | (std::uint32_t{p[2]} << 8U) |
         std::uint32_t{p[3]};
}

void compress_portable(std::uint32_t* state, const unsigned char* blocks,
                       std::size_t count) noexcept {
  for (; count > 0; --count, blocks += Sha256::kBlockSize) {
    std::array<std::uint32_t, 64> w{};
    for (std::size_t t = 0; t < 16; ++t)
      w[t] = load_be32(blocks + 4 * t);
    for (std::size_t t = 16; t < 64; ++t) {
      const std::uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3U);
      const std::uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10U);
      w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    std::uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    std::uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (std::size_t t = 0; t < 64; ++t) {
      const std::uint32_t s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
      const std::uint32_t ch = (e & f) ^ (~e & g);
      const std::uint32_t t1 = h + s1 + ch + kRound[t] + w[t];
      const std::uint32_t s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
      const std::uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + s0 + maj;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
  }
}

#ifdef METRICS_SHA256_X86
// The SHA extensions (Intel since Goldmont/Ice Lake, AMD since Zen): the
// same rounds, four at a time. The state lives as ABEF and CDGH, as
// sha256rnds2 wants it; message words are rearranged four at a time.
__attribute__((target("sha,sse4.1,ssse3"))) void compress_sha_ni(std::uint32_t* state,
                                                                 const unsigned char* blocks,
                                                                 std::size_t count) noexcept {
  const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
  __m128i tmp = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state));
  __m128i state1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4));
  tmp = _mm_shuffle_epi32(tmp, 0xB1);                // CDAB
  state1 = _mm_shuffle_epi32(state1, 0x1B);          // EFGH
  __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);  // ABEF
  state1 = _mm_blend_epi16(state1, tmp, 0xF0);       // CDGH

  for (; count > 0; --count, blocks += Sha256::kBlockSize) {
    const __m128i abef = state0;
    const __m128i cdgh = state1;
    __m128i msg[4] = {};  // std::array would drop __m128i's alignment attribute
#pragma GCC unroll 16
    for (unsigned group = 0; group < 16; ++group) {
      __m128i& current = msg[group % 4];
      if (group < 4) {
        current = _mm_shuffle_epi8(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks + 16 * group)), byte_swap);
      }
      __m128i words = _mm_add_epi32(
          current, _mm_loadu_si128(reinterpret_cast<const __m128i*>(kRound.data() + 4 * group)));
      state1 = _mm_sha256rnds2_epu32(state1, state0, words);
      if (group >= 3 && group <= 14) {  // finishes the words of group + 1
        __m128i& next = msg[(group + 1) % 4];
        next = _mm_add_epi32(next, _mm_alignr_epi8(current, msg[(group + 3) % 4], 4));
        next = _mm_sha256msg2_epu32(next, current);
      }
      words = _mm_shuffle_epi32(words, 0x0E);
      state0 = _mm_sha256rnds2_epu32(state0, state1, words);
      if (group >= 1 && group <= 12) {  // starts the words of group + 3
        __m128i& later = msg[(group + 3) % 4];
        later = _mm_sha256msg1_epu32(later, current);
      }
    }
    state0 = _mm_add_epi32(state0, abef);
    state1 = _mm_add_epi32(state1, cdgh);
  }

  tmp = _mm_shuffle_epi32(state0, 0x1B);        // FEBA
  state1 = _mm_shuffle_epi32(state1, 0xB1);     // DCHG
  state0 = _mm_blend_epi16(tmp, state1, 0xF0);  // DCBA
  state1 = _mm_alignr_epi8(state1, tmp, 8);     // HGFE
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state), state0);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), state1);
}

bool cpu_has_sha_extensions() noexcept {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(1, &a, &b, &c, &d) == 0) return false;
  const bool ssse3 = (c & (1U << 9U)) != 0;
  const bool sse41 = (c & (1U << 19U)) != 0;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d) == 0) return false;
  const bool sha = (b & (1U << 29U)) != 0;
  return ssse3 && sse41 && sha;
}
#endif

std::atomic<bool> g_force_portable{false};

bool use_cpu_extensions() noexcept {
#ifdef METRICS_SHA256_X86
  static const bool available = cpu_has_sha_extensions();
  return available && !g_force_portable.load(std::memory_order_relaxed);
#else
  return false;
#endif
}

}  // namespace

void Sha256::compress(const unsigned char* blocks, std::size_t count) noexcept {
#ifdef METRICS_SHA256_X86
  if (use_cpu_extensions()) {
    compress_sha_ni(state_.data(), blocks, count);
    return;
  }
#endif
  compress_portable(state_.data(), blocks, count);
}

void Sha256::update(std::string_view data) noexcept {
  if (data.empty()) return;
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t size = data.size();
  length_ += size;
  if (buffered_ > 0) {
    const std::size_t take = std::min(size, kBlockSize - buffered_);
    std::memcpy(buffer_.data() + buffered_, in, take);
    buffered_ += take;
    in += take;
    size -= take;
    if (buffered_ < kBlockSize) return;
    compress(buffer_.data(), 1);
    buffered_ = 0;
  }
  if (size >= kBlockSize) {
    compress(in, size / kBlockSize);
    in += size - size % kBlockSize;
    size %= kBlockSize;
  }
  if (size > 0) std::memcpy(buffer_.data(), in, size);
  buffered_ = size;
}

Sha256Digest Sha256::finish() noexcept {
  const std::uint64_t bits = length_ * 8U;
  buffer_[buffered_++] = 0x80;
  if (buffered_ > kBlockSize - 8) {
    std::memset(buffer_.data() + buffered_, 0, kBlockSize - buffered_);
    compress(buffer_.data(), 1);
    buffered_ = 0;
  }
  std::memset(buffer_.data() + buffered_, 0, kBlockSize - 8 - buffered_);
  for (std::size_t i = 0; i < 8; ++i) {
    buffer_[kBlockSize - 1 - i] = static_cast<unsigned char>(bits >> (8U * i));
  }
  compress(buffer_.data(), 1);
  Sha256Digest digest{};
  for (std::size_t i = 0; i < 8; ++i) {
    for (std::size_t j = 0; j < 4; ++j) {
      digest[4 * i + j] = static_cast<unsigned char>(state_[i] >> (24U - 8U * j));
    }
  }
  *this = Sha256{};
  return digest;
}

Sha256Digest hmac_sha256(std::string_view key, std::string_view data) noexcept {
  std::array<unsigned char, Sha256::kBlockSize> block{};
  if (key.size() > Sha256::kBlockSize) {
    Sha256 h;
    h.update(key);
    const Sha256Digest hashed = h.finish();
    std::memcpy(block.data(), hashed.data(), hashed.size());
  } else if (!key.empty()) {
    std::memcpy(block.data(), key.data(), key.size());
  }
  const auto as_view = [](const auto& bytes) {
    return std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  };
  for (auto& byte : block)
    byte ^= 0x36U;
  Sha256 inner;
  inner.update(as_view(block));
  inner.update(data);
  const Sha256Digest inner_digest = inner.finish();
  for (auto& byte : block)
    byte ^= 0x36U ^ 0x5cU;
  Sha256 outer;
  outer.update(as_view(block));
  outer.update(as_view(inner_digest));
  explicit_bzero(block.data(), block.size());
  return outer.finish();
}

namespace detail {

bool sha256_uses_cpu_extensions() noexcept {
  return use_cpu_extensions();
}

void sha256_force_portable(bool portable) noexcept {
  g_force_portable.store(portable, std::memory_order_relaxed);
}

}  // namespace detail
}  // namespace metrics::core
