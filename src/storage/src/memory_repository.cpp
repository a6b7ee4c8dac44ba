#include "metrics/storage/memory_repository.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "metrics/core/errors.hpp"
#include "metrics/core/flat_table.hpp"
#include "metrics/core/labels.hpp"

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
// fraction of std::hash's byte-oriented Murmur, and every update of every
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

namespace {

// A value as 8 bytes: a counter's total, or a gauge's double by its bits.
// One field instead of two keeps every series 8 bytes smaller.
std::int64_t bits_of(double v) noexcept {
  return std::bit_cast<std::int64_t>(v);
}
double double_of(std::int64_t bits) noexcept {
  return std::bit_cast<double>(bits);
}

// The classic value of one type and name, with the series of that name
// without labels beside it: an unlabelled update (the Part 1 path) finds
// both with one lookup, as it found its one value before series existed.
struct ClassicEntry {
  std::int64_t bits = 0;
  std::int64_t series_bits = 0;
  std::int64_t series_ms = 0;
  bool has_series = false;
  // A write other than a series-only one (remote write in) reached the
  // classic value; false: the entry exists only as the owner of series.
  bool has_classic = false;
};

using ClassicMap = std::unordered_map<std::string, ClassicEntry, NameHash, std::equal_to<>>;
using ClassicNode = ClassicMap::value_type;

// A labelled series is keyed by its classic entry (which holds the name,
// so the name is stored once however many series share it, and which an
// update of the series must change too) and its labels, and lives in a
// flat table (a lookup is one cache miss, not a bucket and then a node):
// the slot holds the key, its hash and the value.
struct SeriesSlot {
  ClassicNode* owner = nullptr;  // null: the slot is free
  std::size_t hash = 0;
  core::Labels labels;
  std::int64_t bits = 0;
  std::int64_t ms = 0;
};
struct SeriesTraits {
  static bool used(const SeriesSlot& s) noexcept { return s.owner != nullptr; }
  static std::size_t hash(const SeriesSlot& s) noexcept { return s.hash; }
};
using SeriesMap = core::FlatTable<SeriesSlot, SeriesTraits>;

// A series as looked up: its name, labels and their hash.
struct SeriesLookup {
  std::string_view name;
  const core::Labels* labels;
  std::size_t hash;
  bool operator()(const SeriesSlot& s) const noexcept {
    return s.labels == *labels && s.owner->first == name;
  }
};

std::size_t mix(std::size_t name_hash, const core::Labels& labels) noexcept {
  return name_hash ^ (labels.hash() + 0x9e3779b97f4a7c15ULL + (name_hash << 6) + (name_hash >> 2));
}
SeriesLookup lookup_of(std::string_view name, const core::Labels& labels) noexcept {
  return SeriesLookup{name, &labels, mix(NameHash{}(name), labels)};
}
SeriesSlot* find_series(SeriesMap& series, const SeriesLookup& k) noexcept {
  return series.find(k.hash, k);
}
const SeriesSlot* find_series(const SeriesMap& series, const SeriesLookup& k) noexcept {
  return series.find(k.hash, k);
}
// The series' slot, made (zero, at time 0) under `owner` when absent.
std::pair<SeriesSlot*, bool> emplace_series(SeriesMap& series, const SeriesLookup& k,
                                            ClassicNode* owner) {
  return series.try_emplace(k.hash, k, [&](SeriesSlot& s) {
    s.labels = *k.labels;
    s.hash = k.hash;
    s.owner = owner;
  });
}

std::size_t type_index(core::MetricType type) noexcept {
  return static_cast<std::size_t>(type);
}

core::Point make_point(core::MetricType type, std::string id, core::Labels labels,
                       std::int64_t bits, std::int64_t ms) {
  core::Point p{std::move(id), type, std::move(labels), 0, 0, ms};
  if (type == core::MetricType::counter) {
    p.total = bits;
  } else {
    p.value = double_of(bits);
  }
  return p;
}

std::int64_t bits_of(const core::Point& p) noexcept {
  return p.type == core::MetricType::counter ? p.total : bits_of(p.value);
}

}  // namespace

// Indexed by type: the type picks the map, so lookups need no composite
// key and no allocation (the name is looked up as a string_view).
struct MemoryRepository::Shard {
  mutable ShardLock mu;
  std::array<ClassicMap, 2> classic;
  std::array<SeriesMap, 2> series;
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
  // Unlocks one shard early (one that lock() locked).
  void unlock(std::size_t shard) noexcept {
    shards_[shard]->mu.unlock();
    locked_[shard / 64] &= ~(std::uint64_t{1} << (shard % 64));
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

[[noreturn]] void throw_overflow(const core::Update& u) {
  std::string what = "counter \"" + u.id + "\"";
  if (!u.labels.empty()) what += u.labels.to_string();
  throw core::InvalidInput(what + " would overflow int64");
}

// What it takes to undo one applied update, and what it left behind.
// Trivial on purpose, so that the inline scratch array is not zeroed for
// every batch.
struct Step {
  ClassicNode* classic;
  std::int64_t old_classic;
  std::int64_t old_bits;
  std::int64_t old_ms;
  std::int64_t series_after;  // the series value this update left
  bool labelled;              // the series has labels (it is not the classic entry's)
  bool classic_inserted;
  bool series_inserted;
  bool old_has;
  bool old_has_classic;
};

// Applies one update to its classic entry and series; throws on overflow
// before changing anything of this update.
// `hash`: the series' lookup hash (lookup_of), when it has labels.
void apply_one(ClassicMap& classic, SeriesMap& series, const core::Update& u, std::size_t hash,
               std::int64_t received_ms, Step& s) {
  s.labelled = !u.labels.empty();
  s.classic_inserted = false;
  s.series_inserted = false;
  const bool counter = u.type == core::MetricType::counter;
  const std::int64_t delta = counter ? u.delta : 0;
  const std::int64_t gauge_bits = counter ? 0 : bits_of(u.value);
  if (u.labels.empty()) {
    auto it = classic.find(std::string_view(u.id));
    if (it == classic.end()) {
      it = classic.emplace(u.id, ClassicEntry{}).first;
      s.classic_inserted = true;
    }
    ClassicEntry& e = it->second;
    s.classic = &*it;
    s.old_classic = e.bits;
    s.old_bits = e.series_bits;
    s.old_ms = e.series_ms;
    s.old_has = e.has_series;
    s.old_has_classic = e.has_classic;
    std::int64_t classic_after = u.series_only ? e.bits : gauge_bits;
    std::int64_t series_after = gauge_bits;
    if (counter) {
      const auto c = core::checked_add(e.bits, u.series_only ? 0 : delta);
      const auto v = core::checked_add(e.series_bits, delta);
      if (!c || !v) {
        if (s.classic_inserted) classic.erase(it);
        throw_overflow(u);
      }
      classic_after = *c;
      series_after = *v;
    }
    e.bits = classic_after;
    if (!u.series_only) e.has_classic = true;
    e.series_bits = series_after;
    e.series_ms = received_ms;
    e.has_series = true;
    s.series_after = series_after;
    return;
  }
  // The slot may move when a later update of the batch grows the table:
  // nothing keeps a pointer to it beyond this update (undo finds it again).
  const SeriesLookup lookup{u.id, &u.labels, hash};
  SeriesSlot* cell = find_series(series, lookup);
  if (cell == nullptr) {
    auto cit = classic.find(std::string_view(u.id));
    if (cit == classic.end()) {
      cit = classic.emplace(u.id, ClassicEntry{}).first;
      s.classic_inserted = true;
    }
    try {
      cell = emplace_series(series, lookup, &*cit).first;
    } catch (...) {
      if (s.classic_inserted) classic.erase(cit);
      throw;
    }
    s.series_inserted = true;
  }
  ClassicNode* owner = cell->owner;
  s.classic = owner;
  s.old_classic = owner->second.bits;
  s.old_bits = cell->bits;
  s.old_ms = cell->ms;
  s.old_has = true;
  s.old_has_classic = owner->second.has_classic;
  std::int64_t classic_after = u.series_only ? owner->second.bits : gauge_bits;
  std::int64_t series_after = gauge_bits;
  if (counter) {
    const auto c = core::checked_add(owner->second.bits, u.series_only ? 0 : delta);
    const auto v = core::checked_add(cell->bits, delta);
    if (!c || !v) {
      if (s.series_inserted) series.erase(cell);
      if (s.classic_inserted) classic.erase(classic.find(std::string_view(u.id)));
      throw_overflow(u);
    }
    classic_after = *c;
    series_after = *v;
  }
  owner->second.bits = classic_after;
  if (!u.series_only) owner->second.has_classic = true;
  cell->bits = series_after;
  cell->ms = received_ms;
  s.series_after = series_after;
}

void undo_one(ClassicMap& classic, SeriesMap& series, const core::Update& u, const Step& s) {
  if (s.labelled) {
    // Undone in reverse order: the slot is the one this update found or
    // made, wherever later inserts and erases moved it.
    SeriesSlot* cell = find_series(series, lookup_of(u.id, u.labels));
    if (s.series_inserted) {
      series.erase(cell);
    } else {
      cell->bits = s.old_bits;
      cell->ms = s.old_ms;
    }
  } else {
    s.classic->second.series_bits = s.old_bits;
    s.classic->second.series_ms = s.old_ms;
    s.classic->second.has_series = s.old_has;
  }
  if (s.classic_inserted) {
    classic.erase(classic.find(std::string_view(u.id)));
  } else {
    s.classic->second.bits = s.old_classic;
    s.classic->second.has_classic = s.old_has_classic;
  }
}

// Applies the batch while holding every shard it touches and answers it.
// Updates are applied one by one with an undo record, so that an overflow
// anywhere (also one that only arises from a repeat inside an unmerged
// batch, or from two series of one name in one batch) rolls everything
// back.
template <class Shards>
Applied apply_locked(const Shards& shards, std::vector<core::Update>& batch,
                     std::int64_t received_ms, const std::function<void()>* also = nullptr) {
  const std::size_t n = batch.size();
  Scratch<std::size_t> shard_of(n);
  Scratch<std::size_t> hash_of(n);
  Scratch<Step> steps(n);
  Applied out;
  {
    LockSet<Shards> locks(shards);
    for (std::size_t i = 0; i < n; ++i) {
      const core::Update& u = batch[i];
      shard_of[i] = shard_index(u.id, u.type, shards.size());
      hash_of[i] = u.labels.empty() ? 0 : lookup_of(u.id, u.labels).hash;
      locks.add(shard_of[i]);
    }
    locks.lock();
    // The labelled series' slots are far apart (one per name, in a table of
    // every instance's series of that name): start all their misses first.
    for (std::size_t i = 0; i < n; ++i) {
      const core::Update& u = batch[i];
      if (!u.labels.empty()) shards[shard_of[i]]->series[type_index(u.type)].prefetch(hash_of[i]);
    }

    std::size_t applied = 0;
    try {
      for (; applied < n; ++applied) {
        const core::Update& u = batch[applied];
        auto& shard = *shards[shard_of[applied]];
        const auto t = type_index(u.type);
        apply_one(shard.classic[t], shard.series[t], u, hash_of[applied], received_ms,
                  steps[applied]);
      }
    } catch (...) {
      while (applied > 0) {
        --applied;
        const core::Update& u = batch[applied];
        auto& shard = *shards[shard_of[applied]];
        const auto t = type_index(u.type);
        undo_one(shard.classic[t], shard.series[t], u, steps[applied]);
      }
      throw;
    }
    // Read under the locks: the classic value after the whole batch.
    out.classic.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      const core::Update& u = batch[i];
      const std::int64_t bits = steps[i].classic->second.bits;
      const bool counter = u.type == core::MetricType::counter;
      out.classic.emplace_back(u.id, u.type, core::Labels{}, counter ? bits : 0,
                               counter ? 0.0 : double_of(bits), std::int64_t{0});
    }
    if (also != nullptr) (*also)();
  }
  // The answer's series take the batch's own names and labels: no copies.
  // Built in place: this runs for every update, and moving a short string
  // is a copy.
  out.series.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    core::Update& u = batch[i];
    const std::int64_t bits = steps[i].series_after;
    const bool counter = u.type == core::MetricType::counter;
    out.series.emplace_back(std::move(u.id), u.type, std::move(u.labels), counter ? bits : 0,
                            counter ? 0.0 : double_of(bits), received_ms);
  }
  return out;
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

core::MetricType type_at(std::size_t t) noexcept {
  return static_cast<core::MetricType>(t);
}

}  // namespace

MemoryRepository::MemoryRepository(std::size_t shards) {
  const std::size_t count = shard_count_for(shards);
  shards_.reserve(count);
  for (std::size_t i = 0; i < count; ++i)
    shards_.push_back(std::make_unique<Shard>());
}

MemoryRepository::~MemoryRepository() = default;

void MemoryRepository::apply(std::vector<core::Update> batch, std::int64_t received_ms,
                             Callback<Applied> done) {
  complete(done, [&] { return apply_locked(shards_, batch, received_ms); });
}

void MemoryRepository::get(core::SeriesKey key, Callback<std::optional<core::Point>> done) {
  complete(done, [&] { return get_now(key); });
}

void MemoryRepository::get_classic(core::MetricKey key, Callback<std::optional<core::Point>> done) {
  complete(done, [&] { return get_classic_now(key); });
}

void MemoryRepository::list(Callback<std::vector<core::Point>> done) {
  complete(done, [&] { return list_now(); });
}

void MemoryRepository::list_series(Callback<std::vector<core::Point>> done) {
  complete(done, [&] { return list_series_now(); });
}

void MemoryRepository::expire(std::int64_t cutoff_ms, Callback<std::vector<core::SeriesKey>> done) {
  complete(done, [&] { return expire_now(cutoff_ms); });
}

void MemoryRepository::ping(Callback<bool> done) {
  complete(done, [] { return true; });
}

Applied MemoryRepository::apply_now(std::vector<core::Update> batch, std::int64_t received_ms) {
  return apply_locked(shards_, batch, received_ms);
}

Applied MemoryRepository::apply_now(std::vector<core::Update> batch, std::int64_t received_ms,
                                    const std::function<void()>& also) {
  return apply_locked(shards_, batch, received_ms, &also);
}

std::optional<core::Point> MemoryRepository::get_now(const core::SeriesKey& key) const {
  const Shard& shard = *shards_[shard_index(key.id, key.type, shards_.size())];
  const auto t = type_index(key.type);
  const std::lock_guard lock(shard.mu);
  if (key.labels.empty()) {
    const auto it = shard.classic[t].find(std::string_view(key.id));
    if (it == shard.classic[t].end() || !it->second.has_series) return std::nullopt;
    return make_point(key.type, it->first, {}, it->second.series_bits, it->second.series_ms);
  }
  const SeriesSlot* cell = find_series(shard.series[t], lookup_of(key.id, key.labels));
  if (cell == nullptr) return std::nullopt;
  return make_point(key.type, cell->owner->first, cell->labels, cell->bits, cell->ms);
}

std::optional<core::Point> MemoryRepository::get_classic_now(const core::MetricKey& key) const {
  const Shard& shard = *shards_[shard_index(key.id, key.type, shards_.size())];
  const auto t = type_index(key.type);
  const std::lock_guard lock(shard.mu);
  const auto it = shard.classic[t].find(std::string_view(key.id));
  if (it == shard.classic[t].end() || !it->second.has_classic) return std::nullopt;
  return make_point(key.type, it->first, {}, it->second.bits, 0);
}

namespace {

// Copies the tables asked for as one consistent snapshot that never shows
// half a batch: every shard is locked first, then each is unlocked as soon
// as it is copied (two-phase locking: a batch that gets a shard back still
// waits for the shards not copied yet, so it is wholly after the snapshot).
// A writer waits only until its shards are copied, not for the whole copy.
template <class Shards>
void collect(const Shards& shards, std::vector<core::Point>* classic,
             std::vector<core::Point>* series, const std::function<void()>* also = nullptr) {
  {
    LockSet locks(shards);
    locks.add_all();
    locks.lock();
    if (also != nullptr) (*also)();
    std::size_t names = 0;
    std::size_t labelled = 0;
    for (const auto& shard : shards) {
      names += shard->classic[0].size() + shard->classic[1].size();
      labelled += shard->series[0].size() + shard->series[1].size();
    }
    if (classic != nullptr) classic->reserve(names);
    if (series != nullptr) series->reserve(names + labelled);
    for (std::size_t i = 0; i < shards.size(); ++i) {
      const auto& shard = shards[i];
      for (std::size_t t = 0; t < 2; ++t) {
        for (const auto& [name, e] : shard->classic[t]) {
          if (classic != nullptr && e.has_classic) {
            classic->push_back(make_point(type_at(t), name, {}, e.bits, 0));
          }
          if (series != nullptr && e.has_series) {
            series->push_back(make_point(type_at(t), name, {}, e.series_bits, e.series_ms));
          }
        }
        if (series == nullptr) continue;
        shard->series[t].for_each([&](const SeriesSlot& cell) {
          series->push_back(
              make_point(type_at(t), cell.owner->first, cell.labels, cell.bits, cell.ms));
        });
      }
      locks.unlock(i);
    }
  }
  if (classic != nullptr) std::sort(classic->begin(), classic->end(), core::point_less);
  if (series != nullptr) std::sort(series->begin(), series->end(), core::point_less);
}

}  // namespace

std::vector<core::Point> MemoryRepository::list_now() const {
  std::vector<core::Point> out;
  collect(shards_, &out, nullptr);
  return out;
}

std::vector<core::Point> MemoryRepository::list_series_now() const {
  std::vector<core::Point> out;
  collect(shards_, nullptr, &out);
  return out;
}

MemoryRepository::Contents MemoryRepository::contents_now() const {
  Contents out;
  collect(shards_, &out.classic, &out.series);
  return out;
}

MemoryRepository::Contents MemoryRepository::contents_now(const std::function<void()>& also) const {
  Contents out;
  collect(shards_, &out.classic, &out.series, &also);
  return out;
}

std::vector<core::SeriesKey> MemoryRepository::expired_keys_now(std::int64_t cutoff_ms) const {
  std::vector<core::SeriesKey> out;
  // One shard at a time: expiry must not stall every writer at once.
  for (const auto& shard : shards_) {
    const std::lock_guard lock(shard->mu);
    for (std::size_t t = 0; t < 2; ++t) {
      for (const auto& [name, e] : shard->classic[t]) {
        if (e.has_series && e.series_ms < cutoff_ms) out.push_back({type_at(t), name, {}});
      }
      shard->series[t].for_each([&](const SeriesSlot& cell) {
        if (cell.ms < cutoff_ms) out.push_back({type_at(t), cell.owner->first, cell.labels});
      });
    }
  }
  return out;
}

std::vector<core::SeriesKey> MemoryRepository::expire_now(std::int64_t cutoff_ms) {
  std::vector<core::SeriesKey> out;
  for (const auto& shard : shards_) {
    const std::lock_guard lock(shard->mu);
    for (std::size_t t = 0; t < 2; ++t) {
      for (auto& [name, e] : shard->classic[t]) {
        if (e.has_series && e.series_ms < cutoff_ms) {
          out.push_back({type_at(t), name, {}});
          // Written again later, the series starts from nothing.
          e = ClassicEntry{e.bits, 0, 0, false, e.has_classic};
        }
      }
      // Collected first, then erased: an erase shifts the slots after it.
      auto& series = shard->series[t];
      const std::size_t first = out.size();
      series.for_each([&](const SeriesSlot& cell) {
        if (cell.ms < cutoff_ms) out.push_back({type_at(t), cell.owner->first, cell.labels});
      });
      for (std::size_t i = first; i < out.size(); ++i)
        series.erase(find_series(series, lookup_of(out[i].id, out[i].labels)));
    }
  }
  return out;
}

void MemoryRepository::remove_now(std::span<const core::SeriesKey> keys) {
  for (const auto& key : keys) {
    Shard& shard = *shards_[shard_index(key.id, key.type, shards_.size())];
    const auto t = type_index(key.type);
    const std::lock_guard lock(shard.mu);
    if (key.labels.empty()) {
      const auto it = shard.classic[t].find(std::string_view(key.id));
      if (it != shard.classic[t].end()) {
        it->second = ClassicEntry{it->second.bits, 0, 0, false, it->second.has_classic};
      }
      continue;
    }
    SeriesSlot* cell = find_series(shard.series[t], lookup_of(key.id, key.labels));
    if (cell != nullptr) shard.series[t].erase(cell);
  }
}

namespace {

ClassicEntry& classic_entry(ClassicMap& classic, std::string_view id) {
  auto it = classic.find(id);
  if (it == classic.end()) it = classic.emplace(std::string(id), ClassicEntry{}).first;
  return it->second;
}

// Sets a classic value as given (no locking).
void store_classic(ClassicMap& classic, const core::Point& p) {
  ClassicEntry& e = classic_entry(classic, p.id);
  e.bits = bits_of(p);
  e.has_classic = true;
}

// Sets one series as given in a shard's maps (no locking). Its classic
// entry is created when missing (every series has one), without a classic
// value: a series written series-only has none.
template <class Shard>
void store_series(Shard& shard, const core::Point& p) {
  const auto t = type_index(p.type);
  if (p.labels.empty()) {
    ClassicEntry& e = classic_entry(shard.classic[t], p.id);
    e.series_bits = bits_of(p);
    e.series_ms = p.timestamp_ms;
    e.has_series = true;
    return;
  }
  const SeriesLookup lookup = lookup_of(p.id, p.labels);
  SeriesSlot* cell = find_series(shard.series[t], lookup);
  if (cell == nullptr) {
    auto cit = shard.classic[t].find(std::string_view(p.id));
    if (cit == shard.classic[t].end()) cit = shard.classic[t].emplace(p.id, ClassicEntry{}).first;
    cell = emplace_series(shard.series[t], lookup, &*cit).first;
  }
  cell->bits = bits_of(p);
  cell->ms = p.timestamp_ms;
}

}  // namespace

void MemoryRepository::store_now(std::span<const core::Point> series,
                                 std::span<const core::Point> classic) {
  LockSet locks(shards_);
  for (const auto& p : series)
    locks.add(shard_index(p.id, p.type, shards_.size()));
  for (const auto& p : classic)
    locks.add(shard_index(p.id, p.type, shards_.size()));
  locks.lock();
  // Classic entries first: a labelled series points at its entry.
  for (const auto& p : classic) {
    Shard& shard = *shards_[shard_index(p.id, p.type, shards_.size())];
    store_classic(shard.classic[type_index(p.type)], p);
  }
  for (const auto& p : series)
    store_series(*shards_[shard_index(p.id, p.type, shards_.size())], p);
}

void MemoryRepository::reset(std::span<const core::Point> classic,
                             std::span<const core::Point> series) {
  // Built aside first, so that a failure (out of memory) leaves the old
  // content intact and readers never see a half-restored state. The maps
  // move node by node pointers intact (swap), so series keep their owners.
  std::vector<Shard> fresh(shards_.size());
  for (const core::Point& p : classic) {
    Shard& shard = fresh[shard_index(p.id, p.type, shards_.size())];
    store_classic(shard.classic[type_index(p.type)], p);
  }
  for (const core::Point& p : series)
    store_series(fresh[shard_index(p.id, p.type, shards_.size())], p);
  LockSet locks(shards_);
  locks.add_all();
  locks.lock();
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    for (std::size_t t = 0; t < 2; ++t) {
      shards_[i]->classic[t].swap(fresh[i].classic[t]);
      shards_[i]->series[t].swap(fresh[i].series[t]);
    }
  }
}

}  // namespace metrics::storage
