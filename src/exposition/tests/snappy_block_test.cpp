// Snappy block format: round trip, the limit taken from the header before
// inflating, and malformed blocks.
#include "metrics/exposition/snappy_block.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "metrics/core/errors.hpp"
#include "metrics/core/gzip.hpp"

namespace metrics::exposition {
namespace {

using ::testing::HasSubstr;

std::string sample_data() {
  std::string s;
  std::mt19937 rng(1);
  for (int i = 0; i < 5000; ++i)
    s += "series_" + std::to_string(rng() % 100) + " ";
  return s;
}

TEST(SnappyBlock, RoundTrips) {
  const std::string data = sample_data();
  const std::string packed = snappy_compress(data);
  EXPECT_LT(packed.size(), data.size());
  EXPECT_EQ(snappy_decompress(packed, data.size()), data);
  EXPECT_EQ(snappy_decompress(snappy_compress(""), 0), "");
}

TEST(SnappyBlock, TheLimitIsCheckedFromTheHeader) {
  const std::string data = sample_data();
  const std::string packed = snappy_compress(data);
  try {
    (void)snappy_decompress(packed, data.size() - 1);
    FAIL() << "no exception";
  } catch (const core::InflateLimitExceeded& e) {
    EXPECT_EQ(std::string(e.what()), "snappy: uncompressed length " + std::to_string(data.size()) +
                                         " bytes exceeds the limit of " +
                                         std::to_string(data.size() - 1) + " bytes");
  }
  // A header that announces 4 GiB - 1 with no data behind it is refused by
  // its header alone, before any allocation.
  const std::string bomb("\xff\xff\xff\xff\x0f", 5);
  EXPECT_THROW((void)snappy_decompress(bomb, 32 << 20), core::InflateLimitExceeded);
}

TEST(SnappyBlock, MalformedBlocksAreInvalidInput) {
  const auto error_of = [](std::string_view in) -> std::string {
    try {
      (void)snappy_decompress(in, 1 << 20);
    } catch (const core::InvalidInput& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(error_of(""), "snappy: malformed block header (length varint)");
  EXPECT_EQ(error_of("\x80"), "snappy: malformed block header (length varint)");
  const std::string packed = snappy_compress(sample_data());
  EXPECT_EQ(error_of(std::string_view(packed).substr(0, packed.size() / 2)),
            "snappy: malformed block (corrupt or truncated data)");
  // A header that promises more than the data holds.
  EXPECT_EQ(error_of(std::string("\x05\x08"
                                 "ab",
                                 4)),
            "snappy: malformed block (corrupt or truncated data)");
  EXPECT_THAT(error_of(std::string("\xff\x06\x00\x00sNaPpY\x01\x05\x00\x00", 14)),
              HasSubstr("framed (stream) format"));
}

}  // namespace
}  // namespace metrics::exposition
