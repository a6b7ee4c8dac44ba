// Helper for file_crash_test: opens a synchronous file storage and has
// several threads write to it forever, printing every acknowledged update as
// "<thread> <i>\n" on stdout, until it is killed with SIGKILL.
//
// Thread t writes, in one batch: counter "total" +1, counter "c<t>" +1 and
// gauge "g<t>" = i, for i = 1, 2, ... so that after recovery c<t> == g<t>
// and total == the sum of every c<t>.
//
//   storage_crash_helper <path> <threads>
#include <unistd.h>

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
  using metrics::core::Metric;
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
      for (std::int64_t i = 1;; ++i) {
        storage::apply_sync(repo, {Metric::counter("total", 1), Metric::counter("c" + id, 1),
                                   Metric::gauge("g" + id, static_cast<double>(i))});
        say(id + " " + std::to_string(i) + "\n");
      }
    });
  }
  for (auto& th : threads)
    th.join();
}
