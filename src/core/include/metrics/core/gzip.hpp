// gzip compression and bounded decompression (zlib, RAII-owned streams).
//
//   std::string packed = core::gzip_compress(body);
//   std::string plain = core::gzip_decompress(packed, 1 << 20);  // throws
//
// Thread-safe: no shared state.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace metrics::core {

// The inflated data would exceed the limit (maps to 413).
class InflateLimitExceeded : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// level: zlib level 1..9 (default 6; the server answers with a fast level).
[[nodiscard]] std::string gzip_compress(std::string_view data, int level = 6);
// Throws InvalidInput for a broken or truncated stream (and for trailing
// garbage), InflateLimitExceeded when the output would exceed max_output.
// Concatenated gzip members are accepted.
[[nodiscard]] std::string gzip_decompress(std::string_view data, std::size_t max_output);

}  // namespace metrics::core
