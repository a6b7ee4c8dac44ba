#include "metrics/core/gzip.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <climits>
#include <new>
#include <stdexcept>

#include "metrics/core/errors.hpp"

namespace metrics::core {
namespace {

// 15 window bits plus 16 selects the gzip wrapper (not zlib or raw deflate).
constexpr int kGzipWindowBits = 15 + 16;
constexpr std::size_t kMaxChunk = UINT_MAX;

Bytef* bytes(const char* p) {
  // zlib's next_in is not const-qualified but is never written through.
  return reinterpret_cast<Bytef*>(const_cast<char*>(p));
}

uInt chunk(std::size_t n) {
  return static_cast<uInt>(std::min(n, kMaxChunk));
}

// Owns a z_stream set up for deflate or inflate; the matching *End runs
// whatever happens in between.
class Deflater {
 public:
  explicit Deflater(int level) {
    const int rc =
        deflateInit2(&stream_, level, Z_DEFLATED, kGzipWindowBits, 8, Z_DEFAULT_STRATEGY);
    if (rc == Z_MEM_ERROR) throw std::bad_alloc();
    if (rc != Z_OK) throw std::invalid_argument("gzip: bad compression level");
  }
  ~Deflater() { deflateEnd(&stream_); }
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;
  z_stream& get() noexcept { return stream_; }

 private:
  z_stream stream_{};
};

class Inflater {
 public:
  Inflater() {
    const int rc = inflateInit2(&stream_, kGzipWindowBits);
    if (rc == Z_MEM_ERROR) throw std::bad_alloc();
    if (rc != Z_OK) throw std::runtime_error("gzip: cannot initialise zlib");
  }
  ~Inflater() { inflateEnd(&stream_); }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  z_stream& get() noexcept { return stream_; }

 private:
  z_stream stream_{};
};

bool starts_gzip_member(const z_stream& s) noexcept {
  return s.avail_in >= 2 && s.next_in[0] == 0x1F && s.next_in[1] == 0x8B;
}

// Makes room for `needed` bytes without ever asking for more than `limit`.
// Growing a string in place may round its capacity up to twice the old one,
// past the limit; a fresh string is allocated exactly as requested.
void grow(std::string& out, std::size_t needed, std::size_t limit) {
  const std::size_t capacity = std::min(limit, std::max(needed, out.capacity() * 2));
  std::string bigger;
  bigger.reserve(capacity);
  bigger.append(out);
  out.swap(bigger);
}

}  // namespace

std::string gzip_compress(std::string_view data, int level) {
  Deflater deflater(level);
  z_stream& s = deflater.get();
  std::string out;
  // deflateBound is exact enough that one pass normally suffices.
  out.resize(static_cast<std::size_t>(deflateBound(&s, static_cast<uLong>(data.size()))));
  std::size_t in_left = data.size();
  s.next_in = bytes(data.data());
  std::size_t written = 0;
  for (;;) {
    if (s.avail_in == 0 && in_left > 0) {
      s.avail_in = chunk(in_left);
      in_left -= s.avail_in;
    }
    if (written == out.size()) out.resize(out.size() * 2 + 64);
    s.next_out = reinterpret_cast<Bytef*>(out.data() + written);
    s.avail_out = chunk(out.size() - written);
    const uInt before = s.avail_out;
    const int rc = deflate(&s, in_left == 0 ? Z_FINISH : Z_NO_FLUSH);
    written += before - s.avail_out;
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) throw std::runtime_error("gzip: deflate failed");
  }
  out.resize(written);
  return out;
}

std::string gzip_decompress(std::string_view data, std::size_t max_output) {
  if (data.empty()) throw InvalidInput("broken gzip stream: empty body");
  Inflater inflater;
  z_stream& s = inflater.get();
  std::string out;
  grow(out, std::min(max_output, std::max<std::size_t>(4096, data.size() * 4)), max_output);
  std::array<unsigned char, 16 * 1024> buffer;

  std::size_t in_left = data.size();
  s.next_in = bytes(data.data());
  for (;;) {
    if (s.avail_in == 0 && in_left > 0) {
      s.avail_in = chunk(in_left);
      in_left -= s.avail_in;
    }
    s.next_out = buffer.data();
    s.avail_out = static_cast<uInt>(buffer.size());
    const int rc = inflate(&s, Z_NO_FLUSH);
    const std::size_t produced = buffer.size() - s.avail_out;
    if (produced > 0) {
      if (produced > max_output - out.size()) {
        throw InflateLimitExceeded("inflated body is larger than " + std::to_string(max_output) +
                                   " bytes");
      }
      if (out.size() + produced > out.capacity()) grow(out, out.size() + produced, max_output);
      out.append(reinterpret_cast<const char*>(buffer.data()), produced);
    }
    switch (rc) {
      case Z_OK:
        continue;
      case Z_STREAM_END:
        if (s.avail_in == 0 && in_left == 0) return out;
        {
          // Re-chunk so that the next member's magic cannot straddle a chunk
          // boundary (input is one contiguous buffer).
          const std::size_t rest = s.avail_in + in_left;
          s.avail_in = chunk(rest);
          in_left = rest - s.avail_in;
        }
        if (!starts_gzip_member(s)) throw InvalidInput("trailing garbage after gzip stream");
        if (inflateReset(&s) != Z_OK) throw InvalidInput("broken gzip stream");
        continue;
      case Z_BUF_ERROR:
        // No progress possible with a fresh output buffer: input ran out.
        if (s.avail_in == 0 && in_left == 0) throw InvalidInput("truncated gzip stream");
        continue;
      case Z_MEM_ERROR:
        throw std::bad_alloc();
      default:
        throw InvalidInput("broken gzip stream");
    }
  }
}

}  // namespace metrics::core
