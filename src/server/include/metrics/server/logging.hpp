// Logging set-up: an asynchronous spdlog logger that never blocks the I/O
// threads (when its queue is full the oldest lines are dropped, not the
// requests delayed).
#pragma once

#include <string>

namespace metrics::server {

// Installs the default logger at `level` ("info", "debug", ...). Call once at start.
void init_logging(const std::string& level);
// Flushes and stops the background logging thread.
void shutdown_logging();

}  // namespace metrics::server
