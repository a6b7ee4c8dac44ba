// Writes the seed inputs of fuzz/corpus/remote_write/seed_* with the
// project's own encoder (the Python make_seeds.py has no protobuf encoder):
//
//   build/release/fuzz/fuzz_remote_write_seeds fuzz/corpus/remote_write
//
// Byte 0 of each seed is the fuzz target's mode (bit 0: snappy block).
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "metrics/exposition/remote_write.hpp"
#include "metrics/exposition/snappy_block.hpp"

namespace ex = metrics::exposition;
namespace core = metrics::core;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  std::vector<std::string> bodies;
  const auto add = [&](std::string body) { bodies.push_back(std::move(body)); };

  std::string one;
  ex::append_series(one, "up", core::Labels::make({{"instance", "h:9100"}, {"job", "node"}}),
                    std::array{ex::Sample{1, 1700000000000}});
  add(one);

  std::string many;
  ex::append_metadata(many, {1, "http_requests_total", "Requests.", ""});
  ex::append_metadata(many, {2, "memory_bytes", "Bytes in use.", "bytes"});
  for (int i = 0; i < 5; ++i) {
    ex::append_series(many, "http_requests_total",
                      core::Labels::make({{"code", std::to_string(200 + i)}, {"Zone", "eu"}}),
                      std::array{ex::Sample{1.5 * i, 1000 + i}, ex::Sample{2.5 * i, 2000 + i}});
  }
  add(many);

  std::string odd;
  ex::append_series(
      odd, "x", core::Labels{},
      std::array{ex::Sample{ex::stale_marker(), std::numeric_limits<std::int64_t>::min()},
                 ex::Sample{std::numeric_limits<double>::quiet_NaN(), -1}, ex::Sample{-0.0, 0},
                 ex::Sample{HUGE_VAL, std::numeric_limits<std::int64_t>::max()}});
  add(odd);

  // Raw label lists the validator rejects.
  const std::vector<std::vector<core::LabelView>> bad{
      {{"job", "no name"}},
      {{"__name__", "a"}, {"__name__", "b"}},
      {{"__name__", "a/b"}},
      {{"__name__", "a"}, {"__reserved", "1"}},
      {{"__name__", "a"}, {"bad-name", "1"}},
      {{"__name__", "a"}, {"v", "\xff\xfe"}},
      {{"__name__", "a"}, {"dup", "1"}, {"dup", "2"}},
  };
  for (const auto& labels : bad) {
    std::string b;
    ex::append_series(b, labels, std::array{ex::Sample{1, 1}});
    add(b);
  }
  std::string order;
  ex::append_series(order, "o", core::Labels{}, std::array{ex::Sample{1, 20}, ex::Sample{1, 10}});
  add(order);
  std::string across;
  ex::append_series(across, "o", core::Labels{}, std::array{ex::Sample{1, 20}});
  ex::append_series(across, "p", core::Labels{}, std::array{ex::Sample{1, 5}});
  ex::append_series(across, "o", core::Labels{}, std::array{ex::Sample{1, 10}});
  add(across);

  // Unknown fields of every wire type, nested groups, exemplar-like fields.
  std::string unknown(
      "\x10\x96\x01\x21\x01\x02\x03\x04\x05\x06\x07\x08\x2d\x01\x02\x03\x04"
      "\x32\x03"
      "abc\x3b\x08\x01\x43\x44\x3c",
      27);
  unknown += one;
  add(unknown);
  add(one.substr(0, one.size() / 2));  // truncated
  add(std::string("\x0a\x80", 2));     // truncated varint
  add(std::string("\x08\x01", 2));     // wrong wire type

  const std::filesystem::path dir(argv[1]);
  std::filesystem::create_directories(dir);
  int n = 0;
  const auto write = [&](char mode, const std::string& payload) {
    char name[32];
    std::snprintf(name, sizeof name, "seed_%03d", n++);
    std::ofstream f(dir / name, std::ios::binary);
    f.put(mode);
    f << payload;
  };
  for (const auto& b : bodies)
    write('\0', b);
  for (std::size_t i = 0; i < 3; ++i)
    write('\1', ex::snappy_compress(bodies[i]));
  write('\2', many);  // small limits
  write('\1', std::string("\xff\x06\x00\x00sNaPpY", 10) + ex::snappy_compress(one));
  write('\1', std::string("\xff\xff\xff\xff\x0f", 5));  // announces 4 GiB
  const std::string packed = ex::snappy_compress(many);
  write('\1', packed.substr(0, packed.size() - 3));  // truncated block
  std::printf("%d seeds in %s\n", n, dir.c_str());
  return 0;
}
