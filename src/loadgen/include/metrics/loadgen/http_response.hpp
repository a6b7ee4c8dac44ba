// Parsing the head of an HTTP/1.1 answer, just enough for a load generator.
//
// The generator reads answers into a fixed per-connection buffer and needs
// only the status, the body length and whether the connection stays open; a
// general parser (Beast's) allocates per message, which at 10,000
// connections and 100 k answers a second costs more than it tells us.
//
//   ResponseHead head;
//   switch (parse_response_head(buffer, head)) { ... }
//
// Pure and thread-safe.
#pragma once

#include <cstddef>
#include <string_view>

namespace metrics::loadgen {

struct ResponseHead {
  unsigned status = 0;
  // Bytes of the status line and headers, including the blank line.
  std::size_t head_bytes = 0;
  std::size_t content_length = 0;
  // False when the server said "Connection: close" (or HTTP/1.0 without
  // keep-alive): the connection must be reopened before the next request.
  bool keep_alive = true;
  // Retry-After in seconds (delay-seconds form only; 0 when absent or an
  // HTTP date), capped at one hour.
  unsigned retry_after_s = 0;
  // "Idempotent-Replayed: true": the server had applied this key already.
  bool replayed = false;
};

enum class HeadStatus {
  incomplete,  // no blank line yet: read more
  complete,    // `out` is filled
  malformed,   // not an answer we can frame (bad status line, chunked, no length)
};

// Parses the head at the start of `data`.
[[nodiscard]] HeadStatus parse_response_head(std::string_view data, ResponseHead& out) noexcept;

}  // namespace metrics::loadgen
