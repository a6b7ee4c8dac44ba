// A small program for the preload tests: it allocates, uses threads, forks
// a child and runs a shell; its output and exit status must be the same
// with and without libmetrics-agent-preload.so.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  std::map<int, std::string> m;
  for (int i = 0; i < 20000; ++i)
    m[i] = std::to_string(i * 7);
  std::size_t total = 0;
  for (const auto& [k, v] : m)
    total += v.size();
  std::printf("total=%zu\n", total);

  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([t] {
      std::vector<std::string> v;
      for (int i = 0; i < 1000; ++i)
        v.push_back(std::string(64, static_cast<char>('a' + t)));
    });
  }
  for (auto& t : threads)
    t.join();

  std::fflush(stdout);
  const pid_t child = fork();
  if (child == 0) {
    std::vector<int> v(1000, 1);
    std::printf("child sum=%d\n", v[0] * 1000);
    std::exit(0);  // runs exit handlers in the child: must not touch the parent's agent
  }
  int status = 0;
  waitpid(child, &status, 0);
  std::printf("child exit=%d\n", WEXITSTATUS(status));
  std::fflush(stdout);
  const int rc =
      std::system("echo from-shell; if test -z \"$LD_PRELOAD\"; then echo clean-env; fi");
  std::printf("shell exit=%d\n", WEXITSTATUS(rc));
  if (argc > 1) std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(argv[1])));
  return 3;
}
