// Property checks for the fuzz targets: a broken property aborts, which both
// libFuzzer and the standalone corpus driver report as a failure.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (false)

// The scratch folder goes away when the process ends normally (called once
// per process, from a function-local static).
inline void remove_at_exit(const std::string& dir) {
  static std::string path;
  path = dir;
  std::atexit([] {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  });
}
