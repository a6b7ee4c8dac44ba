// Helper for file_crash_test: opens a synchronous file storage and has
// several threads write to it forever, printing every acknowledged update as
// "<thread> <i>\n" on stdout, until it is killed with SIGKILL.
//
// Thread t writes, in one batch received at time i (i = 1, 2, ...), as the
// sender labelled instance="h<t>": counter "c" +1 and gauge "g" = i, plus
// the unlabelled counter "u" +1, so that after recovery each series c{h<t>}
// equals g{h<t>} and its timestamp, the classic c and the series u equal
// the sum of every c{h<t>}. Another thread keeps expiring what is older
// than time 1 (nothing), so that expiries share the write queue.
//
//   storage_crash_helper <path> <threads>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "metrics/storage/file_repository.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <path> <threads>\n", argv[0]);
    return 2;
  }
  namespace storage = metrics::storage;
  namespace core = metrics::core;
  storage::FileRepository repo(storage::FileOptions{
      .path = argv[1], .store_interval = std::chrono::milliseconds{0}, .compact_log_bytes = 4096});
  std::mutex out;
  const auto say = [&out](const std::string& line) {
    std::lock_guard lock(out);
    // One write() per line: whatever the parent reads was acknowledged.
    (void)!::write(STDOUT_FILENO, line.data(), line.size());
  };
  say("ready\n");
  std::vector<std::thread> threads;
  const int n = std::atoi(argv[2]);
  for (int t = 0; t < n; ++t) {
    threads.emplace_back([&, t] {
      const auto id = std::to_string(t);
      const auto labels = core::Labels::make({{"instance", "h" + id}});
      for (std::int64_t i = 1;; ++i) {
        storage::apply_sync(repo,
                            {core::Update::counter("c", 1, labels),
                             core::Update::gauge("g", static_cast<double>(i), labels),
                             core::Update::counter("u", 1)},
                            i);
        say(id + " " + std::to_string(i) + "\n");
      }
    });
  }
  threads.emplace_back([&] {
    for (;;) {
      if (!storage::expire_sync(repo, 1).empty()) say("expired something\n");
      std::this_thread::sleep_for(std::chrono::milliseconds{1});
    }
  });
  for (auto& th : threads)
    th.join();
}
