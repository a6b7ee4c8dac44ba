#include "metrics/storage/config.hpp"

namespace metrics::storage {

std::string redact_dsn(const std::string& dsn) {
  std::string out = dsn;
  // URI form: scheme://user:password@host/...
  if (const auto scheme = out.find("://"); scheme != std::string::npos) {
    const auto at = out.find('@', scheme + 3);
    const auto colon = out.find(':', scheme + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at) {
      out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // Keyword form, and ?password= in URIs.
  for (std::size_t pos = 0; (pos = out.find("password=", pos)) != std::string::npos;) {
    const auto start = pos + 9;
    auto end = start;
    if (end < out.size() && out[end] == '\'') {
      end = out.find('\'', end + 1);
      end = end == std::string::npos ? out.size() : end + 1;
    } else {
      while (end < out.size() && out[end] != ' ' && out[end] != '&')
        ++end;
    }
    out.replace(start, end - start, "***");
    pos = start + 3;
  }
  return out;
}

}  // namespace metrics::storage
