// libmetrics-agent-preload.so: LD_PRELOAD=libmetrics-agent-preload.so
// ADDRESS=host:port ./program runs the agent inside an unmodified program
// (configured from the environment, as metrics-agent is) and counts its
// allocations with the shim linked into this library.
//
// Every process the library lands in reports as its own instance, and the
// library stays in LD_PRELOAD, so a program started through `nice`, `env`,
// `nohup`, `timeout` or a shell-script shim that execs it reports itself
// (METRICS_AGENT_CHILDREN=0 removes the library from LD_PRELOAD at start, as
// before). A wrapper that only execs reports nothing of its own: nothing is
// sent before the first report interval, and exec ends the agent's threads
// without running any exit code; the program after exec has the same pid
// and starts a fresh agent from this constructor.
//
// What keeps the host unchanged:
// - the agent starts from this library's constructor, before main, and
//   never from inside malloc;
// - only the process that loaded the library reports: a fork child never
//   touches the parent's agent (whose mutexes may be held by threads that do
//   not exist in the child); if it execs, the new program loads the library
//   afresh;
// - at exit the agent sends what it holds within METRICS_AGENT_EXIT_TIMEOUT
//   (default 200ms, connect and send), then the process exits as it would
//   have, also when the server is unreachable;
// - METRICS_AGENT_EXCLUDE=timeout,... names programs (argv[0]'s base name)
//   that start no agent, for wrappers that fork the program and wait;
// - a configuration error prints one line on stderr and the program runs
//   without an agent.
//
// Thread-safety: the constructor and destructor run once per process image,
// on the thread that loads or exits; nothing here is called concurrently.
#include <dlfcn.h>
#include <errno.h>  // program_invocation_short_name
#include <pthread.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "metrics/agent/agent.hpp"
#include "metrics/agent/config.hpp"
#include "preload_config.hpp"

namespace {

pid_t g_owner = 0;
// Deliberately never deleted: other threads of the host may still run while
// the process exits, and a child must not run the parent's destructor.
metrics::agent::Agent* g_agent = nullptr;
std::chrono::milliseconds g_exit_timeout{metrics::agent::detail::PreloadConfig{}.exit_timeout};

void forked_child() noexcept {
  g_agent = nullptr;
}

// Drops every LD_PRELOAD entry that names this library.
void remove_self_from_ld_preload() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&forked_child), &info) == 0 || info.dli_fname == nullptr) {
    return;
  }
  const char* value = std::getenv("LD_PRELOAD");
  if (value == nullptr) return;
  const std::string_view self(info.dli_fname);
  const std::string_view self_base = self.substr(self.rfind('/') + 1);
  std::string kept;
  std::string_view rest(value);
  while (!rest.empty()) {
    const std::size_t end = rest.find_first_of(": ");
    const std::string_view entry = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
    if (entry.empty()) continue;
    const std::string_view base = entry.substr(entry.rfind('/') + 1);
    if (entry == self || base == self_base) continue;
    if (!kept.empty()) kept += ':';
    kept += entry;
  }
  if (kept.empty()) {
    unsetenv("LD_PRELOAD");
  } else {
    setenv("LD_PRELOAD", kept.c_str(), 1);
  }
}

__attribute__((constructor)) void preload_start() {
  try {
    g_owner = getpid();
    const auto env = [](const char* name) { return static_cast<const char*>(std::getenv(name)); };
    const auto own = metrics::agent::detail::load_preload_config(env);
    if (!own.error.empty()) {
      std::fprintf(stderr, "metrics-agent-preload: %s; running without the agent\n",
                   own.error.c_str());
      return;
    }
    if (!own.config.children) remove_self_from_ld_preload();
    if (metrics::agent::detail::excluded(own.config, program_invocation_short_name)) return;
    g_exit_timeout = own.config.exit_timeout;
    pthread_atfork(nullptr, nullptr, &forked_child);
    auto parsed = metrics::agent::load_config_from_env(env);
    if (!parsed.error.empty()) {
      std::fprintf(stderr, "metrics-agent-preload: %s; running without the agent\n",
                   parsed.error.c_str());
      return;
    }
    g_agent = new metrics::agent::Agent(std::move(parsed.config));
    if (!g_agent->running()) {
      std::fprintf(stderr, "metrics-agent-preload: %s; running without the agent\n",
                   g_agent->error().c_str());
    }
  } catch (...) {
    // The host runs on without an agent rather than failing to start.
  }
}

__attribute__((destructor)) void preload_stop() {
  if (g_agent == nullptr || getpid() != g_owner) return;
  g_agent->shutdown(g_exit_timeout);
}

}  // namespace
