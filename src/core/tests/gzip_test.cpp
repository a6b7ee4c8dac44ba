#include "metrics/core/gzip.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "metrics/core/errors.hpp"

namespace metrics::core {
namespace {

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out)
    c = static_cast<char>(rng() & 0xFFU);
  return out;
}

TEST(Gzip, RoundTrip) {
  for (const std::string& data :
       {std::string(), std::string("hello"), std::string(100'000, 'a'), random_bytes(300'000, 1)}) {
    const std::string packed = gzip_compress(data);
    ASSERT_GE(packed.size(), 18U);
    EXPECT_EQ(static_cast<unsigned char>(packed[0]), 0x1FU);
    EXPECT_EQ(static_cast<unsigned char>(packed[1]), 0x8BU);
    EXPECT_EQ(gzip_decompress(packed, data.size()), data);
  }
}

TEST(Gzip, AllLevels) {
  const std::string data = R"([{"id":"Alloc","type":"gauge","value":1.5}])";
  for (int level = 1; level <= 9; ++level) {
    EXPECT_EQ(gzip_decompress(gzip_compress(data, level), 1 << 20), data) << level;
  }
  EXPECT_THROW((void)gzip_compress(data, 42), std::invalid_argument);
}

TEST(Gzip, LimitIsInclusive) {
  const std::string data(1000, 'x');
  const std::string packed = gzip_compress(data);
  EXPECT_EQ(gzip_decompress(packed, 1000), data);
  EXPECT_THROW((void)gzip_decompress(packed, 999), InflateLimitExceeded);
  EXPECT_THROW((void)gzip_decompress(packed, 0), InflateLimitExceeded);
  EXPECT_EQ(gzip_decompress(gzip_compress(""), 0), "");
}

TEST(Gzip, NeverAllocatesBeyondTheLimit) {
  // Output sizes that force several growth steps, each capped at the limit.
  for (std::size_t size : {std::size_t{5000}, std::size_t{70'000}, std::size_t{1'000'001}}) {
    const std::string packed = gzip_compress(std::string(size, 'q'));
    const std::string plain = gzip_decompress(packed, size);
    EXPECT_EQ(plain.size(), size);
    EXPECT_LE(plain.capacity(), size) << size;
  }
}

TEST(Gzip, BombStopsAtTheLimit) {
  // 64 MiB of zeros packs into ~64 KiB; the limit must stop it early.
  const std::string bomb = gzip_compress(std::string(64U << 20, '\0'), 9);
  EXPECT_LT(bomb.size(), 200'000U);
  EXPECT_THROW((void)gzip_decompress(bomb, 1 << 20), InflateLimitExceeded);
  EXPECT_THROW((void)gzip_decompress(bomb, (64U << 20) - 1), InflateLimitExceeded);
}

TEST(Gzip, ConcatenatedMembers) {
  const std::string joined = gzip_compress("hello, ") + gzip_compress("") + gzip_compress("world");
  EXPECT_EQ(gzip_decompress(joined, 100), "hello, world");
  EXPECT_THROW((void)gzip_decompress(joined, 11), InflateLimitExceeded);
}

TEST(Gzip, TruncatedStreamIsInvalidInput) {
  const std::string packed = gzip_compress(random_bytes(10'000, 2));
  for (std::size_t cut : {std::size_t{1}, std::size_t{2}, std::size_t{10}, packed.size() / 2,
                          packed.size() - 8, packed.size() - 1}) {
    EXPECT_THROW((void)gzip_decompress(std::string_view(packed).substr(0, cut), 1 << 20),
                 InvalidInput)
        << cut;
  }
  EXPECT_THROW((void)gzip_decompress("", 100), InvalidInput);
}

TEST(Gzip, TruncatedSecondMemberIsInvalidInput) {
  const std::string second = gzip_compress("second");
  const std::string joined = gzip_compress("first") + second.substr(0, second.size() - 3);
  EXPECT_THROW((void)gzip_decompress(joined, 100), InvalidInput);
}

TEST(Gzip, TrailingGarbageIsInvalidInput) {
  const std::string packed = gzip_compress("payload");
  EXPECT_THROW((void)gzip_decompress(packed + "x", 100), InvalidInput);
  EXPECT_THROW((void)gzip_decompress(packed + std::string(4, '\0'), 100), InvalidInput);
  EXPECT_THROW((void)gzip_decompress(packed + "\x1f", 100), InvalidInput);
}

TEST(Gzip, CorruptStreamIsInvalidInput) {
  EXPECT_THROW((void)gzip_decompress("not gzip at all", 100), InvalidInput);
  std::string packed = gzip_compress(std::string(5000, 'y'));
  // A damaged CRC-32 in the trailer.
  packed[packed.size() - 6] = static_cast<char>(packed[packed.size() - 6] ^ 0x55);
  EXPECT_THROW((void)gzip_decompress(packed, 1 << 20), InvalidInput);
  // Plain zlib (not gzip) framing is refused.
  const std::string zlib_header = "\x78\x9c";
  EXPECT_THROW((void)gzip_decompress(zlib_header + "\x03\x00\x00\x00\x00\x01", 100), InvalidInput);
}

TEST(Gzip, RandomCorruptionNeverCrashes) {
  const std::string packed = gzip_compress(random_bytes(5000, 3) + std::string(5000, 'z'));
  std::mt19937 rng(4);
  for (int i = 0; i < 300; ++i) {
    std::string broken = packed;
    broken[rng() % broken.size()] = static_cast<char>(rng() & 0xFFU);
    try {
      const std::string out = gzip_decompress(broken, 20'000);
      EXPECT_LE(out.size(), 20'000U);
    } catch (const InvalidInput&) {
    } catch (const InflateLimitExceeded&) {
    }
  }
}

}  // namespace
}  // namespace metrics::core
