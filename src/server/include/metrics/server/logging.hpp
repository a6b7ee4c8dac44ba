// Logging set-up: one writer for stderr. The application log and the access
// log hand whole lines to a single writer thread, which stamps them in RFC
// 3339 UTC with milliseconds (2026-12-01T18:49:50.561Z) and writes them in
// the order they were made; no caller ever waits for stderr (when it cannot
// keep up, lines are dropped and counted, never requests delayed). A kill -9
// loses at most the last 100 ms of lines (see src/log_writer.hpp).
#pragma once

#include <string>

namespace metrics::server {

// Installs the default logger at `level` ("info", "debug", ...). Call once at start.
void init_logging(const std::string& level);
// Writes every line logged so far and uninstalls the logger.
void shutdown_logging();

}  // namespace metrics::server
