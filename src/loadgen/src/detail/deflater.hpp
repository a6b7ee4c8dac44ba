// A reusable gzip compressor. core::gzip_compress sets up (and tears down) a
// zlib stream per call, which allocates a few hundred KiB each time; a load
// generator compressing tens of thousands of bodies a second keeps one
// stream and resets it instead.
//
// Not thread-safe: one per thread.
#pragma once

#include <zlib.h>

#include <string>
#include <string_view>

namespace metrics::loadgen {

class Deflater {
 public:
  explicit Deflater(int level = Z_BEST_SPEED);
  ~Deflater();
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;

  // Replaces `out` with the gzip member of `data`, reusing out's capacity.
  void compress(std::string_view data, std::string& out);

 private:
  z_stream stream_{};
};

}  // namespace metrics::loadgen
