// Fuzzes bounded gzip inflation (request bodies with Content-Encoding: gzip)
// and the compressor. Properties: inflating never returns more than the
// limit and throws only core::InvalidInput or core::InflateLimitExceeded;
// compress → decompress is the identity, and a limit one byte short fails.
//
// Input: bytes 0-1 give the limit (0..4095), byte 2 the compression level,
// the rest is the data.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "metrics/core/errors.hpp"
#include "metrics/core/gzip.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace core = metrics::core;
  if (size < 3) return 0;
  const std::size_t limit = (std::size_t{data[0]} | (std::size_t{data[1]} << 8)) & 0xfff;
  const int level = 1 + data[2] % 9;
  const std::string_view input(reinterpret_cast<const char*>(data + 3), size - 3);

  try {
    const auto plain = core::gzip_decompress(input, limit);
    FUZZ_CHECK(plain.size() <= limit);
    // The same stream with a larger limit gives the same bytes.
    FUZZ_CHECK(core::gzip_decompress(input, limit + 4096) == plain);
  } catch (const core::InvalidInput&) {
  } catch (const core::InflateLimitExceeded&) {
  }

  const auto packed = core::gzip_compress(input, level);
  FUZZ_CHECK(core::gzip_decompress(packed, input.size()) == input);
  if (!input.empty()) {
    bool exceeded = false;
    try {
      (void)core::gzip_decompress(packed, input.size() - 1);
    } catch (const core::InflateLimitExceeded&) {
      exceeded = true;
    }
    FUZZ_CHECK(exceeded);
  }
  // Concatenated members are one body.
  FUZZ_CHECK(core::gzip_decompress(packed + packed, 2 * input.size()) ==
             std::string(input) + std::string(input));
  return 0;
}
