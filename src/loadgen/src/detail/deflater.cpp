#include "detail/deflater.hpp"

#include <stdexcept>

namespace metrics::loadgen {

Deflater::Deflater(int level) {
  // windowBits 15 + 16: a gzip wrapper rather than raw zlib.
  if (deflateInit2(&stream_, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("zlib: deflateInit2 failed");
}

Deflater::~Deflater() {
  deflateEnd(&stream_);
}

void Deflater::compress(std::string_view data, std::string& out) {
  if (deflateReset(&stream_) != Z_OK) throw std::runtime_error("zlib: deflateReset failed");
  out.resize(deflateBound(&stream_, static_cast<uLong>(data.size())));
  // zlib's API is not const-correct; it never writes through next_in.
  stream_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream_.avail_in = static_cast<uInt>(data.size());
  stream_.next_out = reinterpret_cast<Bytef*>(out.data());
  stream_.avail_out = static_cast<uInt>(out.size());
  if (deflate(&stream_, Z_FINISH) != Z_STREAM_END)
    throw std::runtime_error("zlib: deflate did not finish within deflateBound");
  out.resize(stream_.total_out);
}

}  // namespace metrics::loadgen
