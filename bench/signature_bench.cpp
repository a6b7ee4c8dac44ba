// HMAC-SHA256 of request bodies (the HashSHA256 header): the built-in
// implementation (metrics/core/sha256.hpp) on the CPU's SHA extensions and on
// its portable rounds, against OpenSSL's HMAC, by body size
// (docs/BENCHMARKS.md, "The preload agent's memory in a plain C host").
//
//   build/release/bench/signature_bench
#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>

#include "metrics/core/sha256.hpp"

namespace {

using metrics::core::Sha256Digest;

void run(benchmark::State& state, bool portable) {
  metrics::core::detail::sha256_force_portable(portable);
  if (!portable && !metrics::core::detail::sha256_uses_cpu_extensions()) {
    state.SkipWithError("this CPU has no SHA extensions");
    return;
  }
  const std::string body(static_cast<std::size_t>(state.range(0)), 'x');
  for (auto _ : state) {
    benchmark::DoNotOptimize(metrics::core::hmac_sha256("key", body));
  }
  metrics::core::detail::sha256_force_portable(false);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void BM_BuiltinCpuExtensions(benchmark::State& state) {
  run(state, false);
}

void BM_BuiltinPortable(benchmark::State& state) {
  run(state, true);
}

void BM_OpenSsl(benchmark::State& state) {
  const std::string body(static_cast<std::size_t>(state.range(0)), 'x');
  for (auto _ : state) {
    Sha256Digest digest{};
    unsigned int length = 0;
    HMAC(EVP_sha256(), "key", 3, reinterpret_cast<const unsigned char*>(body.data()), body.size(),
         digest.data(), &length);
    benchmark::DoNotOptimize(digest);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

}  // namespace

BENCHMARK(BM_BuiltinCpuExtensions)->Arg(256)->Arg(4096)->Arg(1 << 20)->MinTime(0.5);
BENCHMARK(BM_BuiltinPortable)->Arg(256)->Arg(4096)->Arg(1 << 20)->MinTime(0.5);
BENCHMARK(BM_OpenSsl)->Arg(256)->Arg(4096)->Arg(1 << 20)->MinTime(0.5);

BENCHMARK_MAIN();
