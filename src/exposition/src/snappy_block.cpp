#include "metrics/exposition/snappy_block.hpp"

#include <snappy.h>

#include "metrics/core/errors.hpp"
#include "metrics/core/gzip.hpp"

namespace metrics::exposition {
namespace {

// The stream identifier chunk that opens snappy's framed format: a client
// that sends it used the wrong one of snappy's two formats.
constexpr std::string_view kFramedMagic("\xff\x06\x00\x00sNaPpY", 10);

}  // namespace

void snappy_compress(std::string_view data, std::string& out) {
  out.resize(snappy::MaxCompressedLength(data.size()));
  std::size_t written = 0;
  snappy::RawCompress(data.data(), data.size(), out.data(), &written);
  out.resize(written);
}

std::string snappy_compress(std::string_view data) {
  std::string out;
  snappy_compress(data, out);
  return out;
}

void snappy_decompress(std::string_view data, std::size_t max_output, std::string& out) {
  if (data.starts_with(kFramedMagic)) {
    throw core::InvalidInput(
        "snappy: body is in the framed (stream) format; remote write uses the block format");
  }
  std::size_t length = 0;
  if (!snappy::GetUncompressedLength(data.data(), data.size(), &length)) {
    throw core::InvalidInput("snappy: malformed block header (length varint)");
  }
  if (length > max_output) {
    throw core::InflateLimitExceeded("snappy: uncompressed length " + std::to_string(length) +
                                     " bytes exceeds the limit of " + std::to_string(max_output) +
                                     " bytes");
  }
  out.resize(length);
  if (!snappy::RawUncompress(data.data(), data.size(), out.data())) {
    out.clear();
    throw core::InvalidInput("snappy: malformed block (corrupt or truncated data)");
  }
}

std::string snappy_decompress(std::string_view data, std::size_t max_output) {
  std::string out;
  snappy_decompress(data, max_output, out);
  return out;
}

}  // namespace metrics::exposition
