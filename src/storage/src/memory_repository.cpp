#include "metrics/storage/memory_repository.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "metrics/core/errors.hpp"

namespace metrics::storage {
namespace {

// Enough for 4096 shards as a bit set on the stack.
constexpr std::size_t kMaxShards = 4096;
constexpr std::size_t kMaskWords = kMaxShards / 64;
// Batches up to this size keep their per-metric scratch on the stack.
constexpr std::size_t kInlineMetrics = 64;

// A per-process seed makes collisions unpredictable to a client choosing
// names (std::hash<string_view> uses a fixed one).
const std::uint64_t kHashSeed = std::random_device{}() * 0x9E3779B97F4A7C15ULL;

// Metric names are short; hashing them eight bytes at a time costs a
// fraction of std::hash's byte-oriented Murmur, and every metric of every
// batch is hashed twice (shard, then map).
struct NameHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    std::uint64_t h = kHashSeed ^ s.size();
    const char* p = s.data();
    std::size_t n = s.size();
    while (n >= 8) {
      std::uint64_t w = 0;
      std::memcpy(&w, p, 8);
      h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
      h ^= h >> 31;
      p += 8;
      n -= 8;
    }
    std::uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * 0x94D049BB133111EBULL;
    h ^= h >> 29;
    return static_cast<std::size_t>(h);
  }
};

template <class V>
using NameMap = std::unordered_map<std::string, V, NameHash, std::equal_to<>>;

std::size_t shard_count_for(std::size_t requested) {
  return std::bit_ceil(std::clamp<std::size_t>(requested, 1, kMaxShards));
}

// A fixed-capacity buffer on the stack that spills to the heap for big batches.
template <class T>
class Scratch {
 public:
  explicit Scratch(std::size_t n) {
    if (n > kInlineMetrics) heap_.resize(n);
    data_ = n > kInlineMetrics ? heap_.data() : inline_.data();
  }
  T& operator[](std::size_t i) noexcept { return data_[i]; }

 private:
  std::array<T, kInlineMetrics> inline_;
  std::vector<T> heap_;
  T* data_ = nullptr;
};

// What it takes to undo one applied metric. Trivial on purpose, so that the
// inline scratch array is not zeroed for every batch.
struct Undo {
  bool inserted;
  // The value changed in place and what it was, when not inserted.
  double* gauge;
  double old_gauge;
  std::int64_t* counter;
  std::int64_t old_counter;
};

// A futex-based mutex (Drepper's "mutex3": 0 free, 1 locked, 2 locked with
// waiters), used instead of std::mutex for one reason: list() and reset()
// hold every shard at once, and ThreadSanitizer's deadlock detector aborts a
// thread that holds more than 64 pthread mutexes, which 64 shards plus any
// lock of the caller exceed. TSan still sees the acquire/release pairs, so
// data races stay detectable; lock-order safety comes from always locking
// shards in ascending order.
class ShardLock {
 public:
  void lock() noexcept {
    for (int spin = 0; spin < kSpins; ++spin) {
      std::uint32_t expected = 0;
      if (state_.compare_exchange_weak(expected, 1, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        return;
      }
      cpu_relax();
    }
    while (state_.exchange(2, std::memory_order_acquire) != 0) {
      state_.wait(2, std::memory_order_relaxed);
    }
  }
  void unlock() noexcept {
    if (state_.exchange(0, std::memory_order_release) == 2) state_.notify_one();
  }

 private:
  static constexpr int kSpins = 100;
  static void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  std::atomic<std::uint32_t> state_{0};
};

}  // namespace

// Gauges and counters live in separate maps so that lookups need no
// composite key (and no allocation): the type picks the map, the name is
// looked up as a string_view.
struct MemoryRepository::Shard {
  mutable ShardLock mu;
  NameMap<double> gauges;
  NameMap<std::int64_t> counters;
};

namespace {

// Picks the shard from the name's hash and the type; the multiplier spreads
// the high bits so that shard choice and bucket choice stay independent.
std::size_t shard_index(std::string_view name, core::MetricType type,
                        std::size_t shard_count) noexcept {
  const std::size_t h = NameHash{}(name) + static_cast<std::size_t>(type);
  const std::uint64_t mixed = static_cast<std::uint64_t>(h) * 0x9e3779b97f4a7c15ULL;
  return static_cast<std::size_t>(mixed >> 32U) & (shard_count - 1);
}

// Locks a set of shards in ascending index order (the one global order that
// rules out deadlock between batches) and unlocks them on destruction.
template <class Shards>
class LockSet {
 public:
  explicit LockSet(const Shards& shards) : shards_(shards) {}
  LockSet(const LockSet&) = delete;
  LockSet& operator=(const LockSet&) = delete;
  ~LockSet() {
    for_each_bit(locked_, [this](std::size_t i) { shards_[i]->mu.unlock(); });
  }

  void add(std::size_t shard) noexcept { set_bit(wanted_, shard); }
  void add_all() noexcept {
    for (std::size_t i = 0; i < shards_.size(); ++i)
      add(i);
  }
  void lock() {
    for_each_bit(wanted_, [this](std::size_t i) {
      shards_[i]->mu.lock();
      set_bit(locked_, i);
    });
  }

 private:
  using Mask = std::array<std::uint64_t, kMaskWords>;

  static void set_bit(Mask& mask, std::size_t i) noexcept {
    mask[i / 64] |= std::uint64_t{1} << (i % 64);
  }
  template <class F>
  void for_each_bit(const Mask& mask, F&& f) {
    const std::size_t words = (shards_.size() + 63) / 64;
    for (std::size_t w = 0; w < words; ++w) {
      std::uint64_t bits = mask[w];
      while (bits != 0) {
        const auto bit = static_cast<std::size_t>(std::countr_zero(bits));
        bits &= bits - 1;
        f(w * 64 + bit);
      }
    }
  }

  const Shards& shards_;
  Mask wanted_{};
  Mask locked_{};
};

[[noreturn]] void throw_overflow(const core::Metric& m) {
  throw core::InvalidInput("counter \"" + m.id + "\" would overflow int64");
}

// Applies the batch in place (each counter's delta becomes its new total)
// while holding every shard it touches. Metrics are applied one by one with
// an undo record, so that an overflow anywhere (also one that only arises
// from a repeat inside an unmerged batch) rolls everything back.
template <class Shards>
void apply_locked(const Shards& shards, std::vector<core::Metric>& batch) {
  const std::size_t n = batch.size();
  Scratch<std::size_t> shard_of(n);
  LockSet<Shards> locks(shards);
  for (std::size_t i = 0; i < n; ++i) {
    shard_of[i] = shard_index(batch[i].id, batch[i].type, shards.size());
    locks.add(shard_of[i]);
  }
  locks.lock();

  Scratch<Undo> undo(n);
  std::size_t applied = 0;
  const auto rollback = [&] {
    while (applied > 0) {
      --applied;
      const core::Metric& m = batch[applied];
      auto& shard = *shards[shard_of[applied]];
      const Undo& u = undo[applied];
      if (m.type == core::MetricType::gauge) {
        if (u.inserted) {
          shard.gauges.erase(shard.gauges.find(std::string_view(m.id)));
        } else {
          *u.gauge = u.old_gauge;
        }
      } else if (u.inserted) {
        shard.counters.erase(shard.counters.find(std::string_view(m.id)));
      } else {
        *u.counter = u.old_counter;
      }
    }
  };

  try {
    for (; applied < n; ++applied) {
      core::Metric& m = batch[applied];
      auto& shard = *shards[shard_of[applied]];
      Undo& u = undo[applied];
      if (m.type == core::MetricType::gauge) {
        if (auto it = shard.gauges.find(std::string_view(m.id)); it != shard.gauges.end()) {
          u = Undo{false, &it->second, it->second, nullptr, 0};
          it->second = m.value;
        } else {
          shard.gauges.emplace(m.id, m.value);
          u = Undo{true, nullptr, 0, nullptr, 0};
        }
        continue;
      }
      if (auto it = shard.counters.find(std::string_view(m.id)); it != shard.counters.end()) {
        const auto total = core::checked_add(it->second, m.delta);
        if (!total) throw_overflow(m);
        u = Undo{false, nullptr, 0, &it->second, it->second};
        it->second = *total;
        m.delta = *total;
      } else {
        shard.counters.emplace(m.id, m.delta);
        u = Undo{true, nullptr, 0, nullptr, 0};
      }
    }
  } catch (...) {
    rollback();
    throw;
  }
}

template <class F, class T>
void complete(const Callback<T>& done, F&& produce) {
  std::exception_ptr error;
  T result{};
  try {
    result = produce();
  } catch (...) {
    error = std::current_exception();
  }
  // Outside the try: an exception from the callback itself belongs to its
  // owner and must not make us complete a second time.
  done(error, std::move(result));
}

}  // namespace

MemoryRepository::MemoryRepository(std::size_t shards) {
  const std::size_t count = shard_count_for(shards);
  shards_.reserve(count);
  for (std::size_t i = 0; i < count; ++i)
    shards_.push_back(std::make_unique<Shard>());
}

MemoryRepository::~MemoryRepository() = default;

void MemoryRepository::apply(std::vector<core::Metric> batch,
                             Callback<std::vector<core::Metric>> done) {
  complete(done, [&] {
    apply_locked(shards_, batch);
    return std::move(batch);
  });
}

void MemoryRepository::get(core::MetricKey key, Callback<std::optional<core::Metric>> done) {
  complete(done, [&] { return get_now(key); });
}

void MemoryRepository::list(Callback<std::vector<core::Metric>> done) {
  complete(done, [&] { return list_now(); });
}

void MemoryRepository::ping(Callback<bool> done) {
  complete(done, [] { return true; });
}

std::vector<core::Metric> MemoryRepository::apply_now(const std::vector<core::Metric>& batch) {
  std::vector<core::Metric> stored = batch;
  apply_locked(shards_, stored);
  return stored;
}

std::optional<core::Metric> MemoryRepository::get_now(const core::MetricKey& key) const {
  const Shard& shard = *shards_[shard_index(key.id, key.type, shards_.size())];
  const std::lock_guard lock(shard.mu);
  if (key.type == core::MetricType::gauge) {
    const auto it = shard.gauges.find(std::string_view(key.id));
    if (it == shard.gauges.end()) return std::nullopt;
    return core::Metric::gauge(it->first, it->second);
  }
  const auto it = shard.counters.find(std::string_view(key.id));
  if (it == shard.counters.end()) return std::nullopt;
  return core::Metric::counter(it->first, it->second);
}

std::vector<core::Metric> MemoryRepository::list_now() const {
  std::vector<core::Metric> out;
  {
    // Every shard at once: a consistent snapshot never shows half a batch.
    LockSet locks(shards_);
    locks.add_all();
    locks.lock();
    std::size_t total = 0;
    for (const auto& shard : shards_)
      total += shard->gauges.size() + shard->counters.size();
    out.reserve(total);
    for (const auto& shard : shards_) {
      for (const auto& [name, value] : shard->gauges)
        out.push_back(core::Metric::gauge(name, value));
      for (const auto& [name, delta] : shard->counters) {
        out.push_back(core::Metric::counter(name, delta));
      }
    }
  }
  std::sort(out.begin(), out.end(), core::metric_less);
  return out;
}

void MemoryRepository::reset(const std::vector<core::Metric>& metrics) {
  // Built aside first, so that a failure (out of memory) leaves the old
  // content intact and readers never see a half-restored state.
  std::vector<Shard> fresh(shards_.size());
  for (const core::Metric& m : metrics) {
    Shard& shard = fresh[shard_index(m.id, m.type, shards_.size())];
    if (m.type == core::MetricType::gauge) {
      shard.gauges.insert_or_assign(m.id, m.value);
    } else {
      shard.counters.insert_or_assign(m.id, m.delta);
    }
  }
  LockSet locks(shards_);
  locks.add_all();
  locks.lock();
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    shards_[i]->gauges.swap(fresh[i].gauges);
    shards_[i]->counters.swap(fresh[i].counters);
  }
}

}  // namespace metrics::storage
