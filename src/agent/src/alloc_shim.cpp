// The opt-in allocation-counting shim: it defines malloc and friends, counts
// each call with relaxed atomics and forwards to the next definition in
// symbol lookup order (glibc, or jemalloc/tcmalloc/mimalloc when those are
// loaded), found with dlsym(RTLD_NEXT).
//
// Two traps it avoids: dlsym itself may call calloc while the real functions
// are being looked up, so those early requests are served from a small
// static buffer (and never freed for real); and the shim never allocates,
// locks or calls the agent, so it cannot recurse or deadlock, before or
// after fork.
//
// Counting semantics: every successful malloc, calloc, memalign,
// aligned_alloc, posix_memalign, valloc and pvalloc is one malloc; every
// free of a non-null pointer is one free; a realloc that returns a block
// counts as one free of the old block (when there was one) and one malloc of
// the new, even when it grew in place, so Mallocs - Frees is the number of
// live blocks. Bytes are the allocator's usable size of each new block.
#include "alloc_shim.h"

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace {

using MallocFn = void* (*)(std::size_t);
using FreeFn = void (*)(void*);
using CallocFn = void* (*)(std::size_t, std::size_t);
using ReallocFn = void* (*)(void*, std::size_t);
using MemalignFn = void* (*)(std::size_t, std::size_t);
using PosixMemalignFn = int (*)(void**, std::size_t, std::size_t);
using UsableSizeFn = std::size_t (*)(void*);

struct RealFunctions {
  MallocFn malloc = nullptr;
  FreeFn free = nullptr;
  CallocFn calloc = nullptr;
  ReallocFn realloc = nullptr;
  MemalignFn memalign = nullptr;
  MemalignFn aligned_alloc = nullptr;
  PosixMemalignFn posix_memalign = nullptr;
  MallocFn valloc = nullptr;
  MallocFn pvalloc = nullptr;
  UsableSizeFn usable_size = nullptr;
};

RealFunctions g_real;
// 0: not looked up, 1: lookup in progress, 2: ready.
std::atomic<int> g_state{0};

// Requests made while dlsym runs. glibc's dlsym asks for one small
// (dlerror) buffer; 64 KiB leaves a wide margin.
constexpr std::size_t kBootstrapSize = 64 * 1024;
alignas(64) unsigned char g_bootstrap[kBootstrapSize];
std::atomic<std::size_t> g_bootstrap_used{0};

bool from_bootstrap(const void* p) noexcept {
  const auto* b = static_cast<const unsigned char*>(p);
  return b >= g_bootstrap && b < g_bootstrap + kBootstrapSize;
}

// 16-byte header holding the size, so that realloc can copy.
void* bootstrap_alloc(std::size_t n) noexcept {
  const std::size_t need = ((n + 15) & ~std::size_t{15}) + 16;
  const std::size_t at = g_bootstrap_used.fetch_add(need, std::memory_order_relaxed);
  if (at + need > kBootstrapSize) return nullptr;
  unsigned char* block = g_bootstrap + at;
  std::memcpy(block, &n, sizeof n);
  return block + 16;
}

std::size_t bootstrap_size(const void* p) noexcept {
  std::size_t n = 0;
  std::memcpy(&n, static_cast<const unsigned char*>(p) - 16, sizeof n);
  return n;
}

template <typename Fn>
Fn next(const char* name) noexcept {
  // POSIX guarantees that a function's address from dlsym converts back.
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

void resolve() noexcept {
  int expected = 0;
  if (!g_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) return;
  RealFunctions r;
  r.malloc = next<MallocFn>("malloc");
  r.free = next<FreeFn>("free");
  r.calloc = next<CallocFn>("calloc");
  r.realloc = next<ReallocFn>("realloc");
  r.memalign = next<MemalignFn>("memalign");
  r.aligned_alloc = next<MemalignFn>("aligned_alloc");
  r.posix_memalign = next<PosixMemalignFn>("posix_memalign");
  r.valloc = next<MallocFn>("valloc");
  r.pvalloc = next<MallocFn>("pvalloc");
  r.usable_size = next<UsableSizeFn>("malloc_usable_size");
  g_real = r;
  g_state.store(2, std::memory_order_release);
}

// True when the real functions can be used; false while dlsym is running
// (in this or, briefly, another thread).
bool ready() noexcept {
  if (g_state.load(std::memory_order_acquire) == 2) return true;
  resolve();
  return g_state.load(std::memory_order_acquire) == 2;
}

// Counters split over cache lines by thread, so that threads allocating at
// the same time do not fight over one line.
constexpr std::size_t kShards = 16;
struct alignas(64) Shard {
  std::atomic<std::uint64_t> mallocs{0};
  std::atomic<std::uint64_t> frees{0};
  std::atomic<std::uint64_t> bytes{0};
};
Shard g_shards[kShards];

Shard& shard() noexcept {
  const auto id = static_cast<std::uint64_t>(pthread_self());
  return g_shards[(id * 0x9E3779B97F4A7C15ULL) >> 60];
}

void count_malloc(void* p) noexcept {
  if (p == nullptr) return;
  Shard& s = shard();
  s.mallocs.fetch_add(1, std::memory_order_relaxed);
  const std::size_t size = g_real.usable_size != nullptr ? g_real.usable_size(p) : 0;
  s.bytes.fetch_add(size, std::memory_order_relaxed);
}

void count_free() noexcept {
  shard().frees.fetch_add(1, std::memory_order_relaxed);
}

// Resolves early: before main, while the process has one thread.
__attribute__((constructor(101))) void shim_init() {
  resolve();
}

}  // namespace

extern "C" {

int metrics_agent_read_alloc_counts(struct metrics_agent_alloc_counts* out) {
  metrics_agent_alloc_counts sum{0, 0, 0};
  for (const Shard& s : g_shards) {
    sum.mallocs += s.mallocs.load(std::memory_order_relaxed);
    sum.frees += s.frees.load(std::memory_order_relaxed);
    sum.allocated_bytes += s.bytes.load(std::memory_order_relaxed);
  }
  *out = sum;
  return 1;
}

void* malloc(std::size_t n) noexcept {
  if (!ready()) return bootstrap_alloc(n);
  void* p = g_real.malloc(n);
  count_malloc(p);
  return p;
}

void free(void* p) noexcept {
  if (p == nullptr || from_bootstrap(p)) return;
  if (!ready()) return;  // cannot happen: p came from a real allocation
  count_free();
  g_real.free(p);
}

void* calloc(std::size_t count, std::size_t size) noexcept {
  if (!ready()) {
    std::size_t total = 0;
    if (__builtin_mul_overflow(count, size, &total)) return nullptr;
    // Static storage is zeroed and never reused.
    return bootstrap_alloc(total);
  }
  void* p = g_real.calloc(count, size);
  count_malloc(p);
  return p;
}

void* realloc(void* old, std::size_t n) noexcept {
  if (old != nullptr && from_bootstrap(old)) {
    void* p = malloc(n);
    if (p != nullptr) std::memcpy(p, old, std::min(n, bootstrap_size(old)));
    return p;
  }
  if (!ready()) return bootstrap_alloc(n);
  void* p = g_real.realloc(old, n);
  if (p != nullptr) {
    if (old != nullptr) count_free();
    count_malloc(p);
  } else if (old != nullptr && n == 0) {
    count_free();  // glibc frees the block and returns NULL
  }
  return p;
}

void* reallocarray(void* old, std::size_t count, std::size_t size) noexcept {
  std::size_t total = 0;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  return realloc(old, total);
}

void* memalign(std::size_t alignment, std::size_t n) noexcept {
  if (!ready()) return nullptr;
  void* p = g_real.memalign(alignment, n);
  count_malloc(p);
  return p;
}

void* aligned_alloc(std::size_t alignment, std::size_t n) noexcept {
  if (!ready()) return nullptr;
  void* p = g_real.aligned_alloc != nullptr ? g_real.aligned_alloc(alignment, n)
                                            : g_real.memalign(alignment, n);
  count_malloc(p);
  return p;
}

int posix_memalign(void** out, std::size_t alignment, std::size_t n) noexcept {
  if (!ready()) return ENOMEM;
  const int rc = g_real.posix_memalign(out, alignment, n);
  if (rc == 0) count_malloc(*out);
  return rc;
}

void* valloc(std::size_t n) noexcept {
  if (!ready() || g_real.valloc == nullptr) return nullptr;
  void* p = g_real.valloc(n);
  count_malloc(p);
  return p;
}

void* pvalloc(std::size_t n) noexcept {
  if (!ready() || g_real.pvalloc == nullptr) return nullptr;
  void* p = g_real.pvalloc(n);
  count_malloc(p);
  return p;
}

}  // extern "C"
