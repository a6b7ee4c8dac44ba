// Snappy's block format (not the framed/stream format), as remote write
// uses it, with a size limit checked from the block's own header (its
// leading varint) before anything is inflated.
//
//   std::string wire = exposition::snappy_compress(body);
//   std::string body = exposition::snappy_decompress(wire, 32 << 20);  // throws
//
// Thread-safe: no shared state.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace metrics::exposition {

[[nodiscard]] std::string snappy_compress(std::string_view data);
void snappy_compress(std::string_view data, std::string& out);

// Throws core::InflateLimitExceeded (413) when the header announces more
// than max_output bytes, core::InvalidInput when the block is malformed
// (the message says when it looks like the framed format instead).
[[nodiscard]] std::string snappy_decompress(std::string_view data, std::size_t max_output);
void snappy_decompress(std::string_view data, std::size_t max_output, std::string& out);

}  // namespace metrics::exposition
