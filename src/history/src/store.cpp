// HistoryStore. Bytes are accounted approximately (sizes of the structures
// and capacities of the buffers, plus a fixed guess for allocator and
// hash-node overhead) so that the memory cap tracks resident memory without
// asking the allocator.
#include "metrics/history/store.hpp"

#include <algorithm>
#include <cstring>
#include <new>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "detail/flat_map.hpp"

namespace metrics::history {
namespace {

// What a heap allocation costs beyond its size (glibc: 8-16 bytes).
constexpr std::size_t kMallocOverhead = 16;

// A closed chunk in one allocation: this header, then the encoded bytes.
// Immutable once made; shared between the series and range reads in flight
// by an intrusive count (a shared_ptr and a vector would cost two more
// allocations and ~60 bytes a chunk, 0.5 bytes a sample at 120 samples).
class ClosedChunk {
 public:
  std::int64_t min_t = 0;
  std::int64_t max_t = 0;
  std::uint32_t count = 0;
  std::uint32_t size = 0;

  [[nodiscard]] std::span<const std::uint8_t> bytes() const noexcept {
    return {reinterpret_cast<const std::uint8_t*>(this) + sizeof(ClosedChunk), size};
  }

 private:
  friend class ChunkPtr;
  ClosedChunk() = default;
  mutable std::atomic<std::uint32_t> refs_{1};
};

class ChunkPtr {
 public:
  ChunkPtr() = default;
  static ChunkPtr make(const CodecState& state, std::span<const std::uint8_t> bytes) {
    void* mem = ::operator new(sizeof(ClosedChunk) + bytes.size());
    auto* c = new (mem) ClosedChunk();
    c->min_t = state.min_t;
    c->max_t = state.max_t;
    c->count = state.count;
    c->size = static_cast<std::uint32_t>(bytes.size());
    if (!bytes.empty())
      std::memcpy(static_cast<std::byte*>(mem) + sizeof(ClosedChunk), bytes.data(), bytes.size());
    ChunkPtr p;
    p.p_ = c;
    return p;
  }
  ChunkPtr(const ChunkPtr& o) noexcept : p_(o.p_) {
    if (p_) p_->refs_.fetch_add(1, std::memory_order_relaxed);
  }
  ChunkPtr(ChunkPtr&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  ChunkPtr& operator=(ChunkPtr o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~ChunkPtr() {
    if (p_ && p_->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      p_->~ClosedChunk();
      ::operator delete(p_);
    }
  }
  const ClosedChunk* operator->() const noexcept { return p_; }
  const ClosedChunk& operator*() const noexcept { return *p_; }

 private:
  ClosedChunk* p_ = nullptr;
};

std::size_t closed_cost(const ClosedChunk& c) {
  return sizeof(ClosedChunk) + c.size + kMallocOverhead;
}

std::size_t identity_cost(const SeriesIdentity& id) {
  const std::size_t name = id.id.capacity() > 15 ? id.id.capacity() + 1 + kMallocOverhead : 0;
  const std::size_t labels = id.labels.heap_bytes();
  return sizeof(SeriesIdentity) + 16 + kMallocOverhead + name +
         (labels > 0 ? labels + kMallocOverhead : 0);
}

std::int64_t to_ms(core::Clock::SystemTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

static_assert(sizeof(ChunkWriter) <= 120 + 2 * sizeof(ChunkCheckpoint),
              "open_charged and what an append touches of the writer: 128 bytes");

// What an append touches (open_charged and the open chunk's writer but for
// its checkpoints, at its end) is the first 128 bytes: two cache lines,
// which append_batch() prefetches.
struct alignas(64) HistoryStore::Series {
  explicit Series(std::shared_ptr<const SeriesIdentity> id)
      : open(id->type), identity(std::move(id)) {}
  std::size_t open_charged = 0;  // the open buffer's capacity, as counted in bytes_
  ChunkWriter open;
  std::shared_ptr<const SeriesIdentity> identity;
  std::vector<ChunkPtr> closed;  // oldest first
  std::size_t fixed_cost = 0;    // the node and the identity
  std::uint32_t next_seq = 0;    // the seq of the open chunk
  std::size_t name_pos = 0;      // its place in the shard's by_name[identity->id]
};

namespace {
struct NameHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};
}  // namespace

struct HistoryStore::Shard {
  mutable std::mutex mu;
  std::vector<ChunkExport> closed_since;  // with track_closed
  detail::FlatMap<Series> map;
  // The refs of each name (any type): read_range_named() reads only these.
  std::unordered_map<std::string, std::vector<SeriesRef>, NameHash, std::equal_to<>> by_name;
};

HistoryStore::HistoryStore(HistoryOptions options) : options_(std::move(options)) {
  if (options_.shards == 0 || (options_.shards & (options_.shards - 1)) != 0)
    throw std::invalid_argument("history: shards must be a power of two");
  if (options_.chunk_samples == 0) throw std::invalid_argument("history: chunk_samples is 0");
  if (!options_.clock) options_.clock = core::real_clock();
  shards_ = std::make_unique<Shard[]>(options_.shards);
  shard_mask_ = options_.shards - 1;
  if (options_.maintenance_interval.count() > 0)
    maintenance_ = std::thread([this] { maintenance_loop(); });
}

HistoryStore::~HistoryStore() {
  if (maintenance_.joinable()) {
    {
      std::lock_guard lock(stop_mu_);
      stopping_ = true;
    }
    stop_cv_.notify_all();
    maintenance_.join();
  }
}

void HistoryStore::maintenance_loop() {
  std::unique_lock lock(stop_mu_);
  while (!stopping_) {
    if (options_.clock->wait_for(stop_cv_, lock, options_.maintenance_interval,
                                 [this] { return stopping_; }))
      break;
    lock.unlock();
    maintain();
    lock.lock();
  }
}

HistoryStore::Shard& HistoryStore::shard_of(SeriesRef ref) const {
  // Refs are often dense small integers: mix them so that neighbours spread.
  std::uint64_t h = ref * 0x9e3779b97f4a7c15ull;
  h ^= h >> 29;
  return shards_[h & shard_mask_];
}

HistoryStore::Series* HistoryStore::add_series(Shard& shard, SeriesRef ref,
                                               std::shared_ptr<const SeriesIdentity> identity) {
  const std::size_t index_before = shard.map.capacity_bytes();
  Series* s = shard.map.try_emplace(ref, std::move(identity)).first;
  s->fixed_cost = identity_cost(*s->identity) + sizeof(SeriesRef);
  auto& named = shard.by_name[s->identity->id];
  s->name_pos = named.size();
  named.push_back(ref);
  // The index (table and value slots) grows and never shrinks (an erased
  // series' slot is reused): charged as it grows.
  bytes_.fetch_add(s->fixed_cost + shard.map.capacity_bytes() - index_before,
                   std::memory_order_relaxed);
  series_.fetch_add(1, std::memory_order_relaxed);
  return s;
}

bool HistoryStore::append(SeriesRef ref, const SeriesIdentity& identity, std::int64_t t_ms,
                          double gauge) {
  return append_bits(ref, identity, t_ms, gauge_bits(gauge), core::MetricType::gauge);
}

bool HistoryStore::append(SeriesRef ref, const SeriesIdentity& identity, std::int64_t t_ms,
                          std::int64_t counter_total) {
  return append_bits(ref, identity, t_ms, counter_bits(counter_total), core::MetricType::counter);
}

struct HistoryStore::Deltas {
  std::ptrdiff_t bytes = 0;
  std::ptrdiff_t payload = 0;
  std::size_t samples = 0;
};

void HistoryStore::commit(const Deltas& d) noexcept {
  if (d.bytes != 0) bytes_.fetch_add(static_cast<std::size_t>(d.bytes), std::memory_order_relaxed);
  if (d.payload != 0)
    payload_bytes_.fetch_add(static_cast<std::size_t>(d.payload), std::memory_order_relaxed);
  if (d.samples != 0) samples_.fetch_add(d.samples, std::memory_order_relaxed);
}

bool HistoryStore::append_bits(SeriesRef ref, const SeriesIdentity& identity, std::int64_t t_ms,
                               std::uint64_t bits, core::MetricType kind) {
  Shard& shard = shard_of(ref);
  Deltas deltas;
  bool stored = false;
  {
    std::lock_guard lock(shard.mu);
    stored =
        append_locked(shard, shard.map.find(ref),
                      {.ref = ref, .t_ms = t_ms, .bits = bits, .kind = kind, .identity = &identity},
                      deltas) == Appended::stored;
  }
  commit(deltas);
  return stored;
}

std::size_t HistoryStore::append_batch(std::span<const AppendItem> items) {
  return append_batch_into(items, nullptr);
}

std::size_t HistoryStore::append_batch(std::span<const AppendItem> items,
                                       std::vector<std::uint32_t>& unknown) {
  const std::size_t first = unknown.size();
  const std::size_t stored = append_batch_into(items, &unknown);
  // Found window by window: put back in item order.
  std::sort(unknown.begin() + static_cast<std::ptrdiff_t>(first), unknown.end());
  return stored;
}

std::size_t HistoryStore::append_batch_into(std::span<const AppendItem> items,
                                            std::vector<std::uint32_t>* unknown) {
  if (items.empty()) return 0;
  // Scratch kept by the thread (a drain thread appends batch after batch):
  // no allocation per call once it has seen its largest batch.
  struct Scratch {
    std::vector<std::uint32_t> shard_of_item, shards;
    std::vector<std::size_t> in_window;
    std::vector<Series*> found;
  };
  thread_local Scratch scratch;
  auto& shard_of_item = scratch.shard_of_item;
  auto& shards = scratch.shards;
  shard_of_item.resize(items.size());
  shards.clear();
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto k = static_cast<std::uint32_t>(&shard_of(items[i].ref) - shards_.get());
    shard_of_item[i] = k;
    shards.push_back(k);
  }
  std::sort(shards.begin(), shards.end());
  shards.erase(std::unique(shards.begin(), shards.end()), shards.end());

  // The shards are taken a window at a time, each window's mutexes in
  // ascending order (the one order every multi-shard locker uses, so no two
  // can deadlock), at most kWindow at once (enough misses in flight, and
  // few locks held).
  constexpr std::size_t kWindow = 16;
  Deltas deltas;
  std::size_t stored = 0;
  auto& in_window = scratch.in_window;
  auto& found = scratch.found;
  for (std::size_t w = 0; w < shards.size(); w += kWindow) {
    const std::uint32_t lo = shards[w];
    const std::uint32_t hi = shards[std::min(w + kWindow, shards.size()) - 1];
    in_window.clear();
    for (std::size_t i = 0; i < items.size(); ++i)
      if (shard_of_item[i] >= lo && shard_of_item[i] <= hi) in_window.push_back(i);
    const auto first = shards.begin() + static_cast<std::ptrdiff_t>(w);
    const auto last =
        shards.begin() + static_cast<std::ptrdiff_t>(std::min(w + kWindow, shards.size()));
    for (auto k = first; k != last; ++k)
      shards_[*k].mu.lock();
    try {
      // Three passes of hints, then the writes: each pass's loads are
      // independent, so the misses of the window overlap instead of
      // queueing one series after the other.
      for (const auto i : in_window)
        shards_[shard_of_item[i]].map.prefetch(items[i].ref);
      found.clear();
      for (const auto i : in_window) {
        Series* f = shards_[shard_of_item[i]].map.find(items[i].ref);
        if (f != nullptr) {
          __builtin_prefetch(f);
          __builtin_prefetch(reinterpret_cast<const char*>(f) + 64);
        }
        found.push_back(f);
      }
      for (Series* f : found)
        if (f != nullptr) f->open.prefetch_tail();
      for (std::size_t j = 0; j < in_window.size(); ++j) {
        const auto i = in_window[j];
        Shard& shard = shards_[shard_of_item[i]];
        // A series made by an earlier item of this batch is found again.
        Series* f = found[j] != nullptr ? found[j] : shard.map.find(items[i].ref);
        switch (append_locked(shard, f, items[i], deltas)) {
          case Appended::stored:
            ++stored;
            break;
          case Appended::unknown:
            if (unknown != nullptr) unknown->push_back(static_cast<std::uint32_t>(i));
            break;
          case Appended::refused:
            break;
        }
      }
    } catch (...) {
      for (auto k = first; k != last; ++k)
        shards_[*k].mu.unlock();
      commit(deltas);
      throw;
    }
    for (auto k = first; k != last; ++k)
      shards_[*k].mu.unlock();
  }
  commit(deltas);
  return stored;
}

HistoryStore::Appended HistoryStore::append_locked(Shard& shard, Series* found,
                                                   const AppendItem& item, Deltas& deltas) {
  const core::MetricType kind = item.kind;
  const std::int64_t t_ms = item.t_ms;
  if (found == nullptr) {
    if (item.identity == nullptr) return Appended::unknown;
    if (item.identity->type != kind) return Appended::refused;
    found = add_series(shard, item.ref, std::make_shared<const SeriesIdentity>(*item.identity));
  }
  Series& s = *found;
  if (s.open.type() != kind) return Appended::refused;

  if (!s.open.empty()) {
    const auto& st = s.open.state();
    const bool full = s.open.count() >= options_.chunk_samples;
    const bool late = t_ms > st.first_t &&
                      static_cast<std::uint64_t>(t_ms) - static_cast<std::uint64_t>(st.first_t) >
                          static_cast<std::uint64_t>(options_.chunk_span.count());
    if (full || late) {
      auto chunk = ChunkPtr::make(st, s.open.bytes());
      (void)s.open.release();
      deltas.bytes += static_cast<std::ptrdiff_t>(closed_cost(*chunk)) -
                      static_cast<std::ptrdiff_t>(s.open_charged);
      // The next chunk will likely be about as large as this one.
      s.open.reserve(chunk->size + 8);
      s.open_charged = 0;
      const auto slots_before = s.closed.capacity();
      if (options_.track_closed)
        shard.closed_since.push_back(
            {item.ref, s.identity, s.next_seq, chunk->count, chunk->max_t,
             std::vector<std::uint8_t>(chunk->bytes().begin(), chunk->bytes().end())});
      ++s.next_seq;
      s.closed.push_back(std::move(chunk));
      deltas.bytes +=
          static_cast<std::ptrdiff_t>((s.closed.capacity() - slots_before) * sizeof(ChunkPtr));
      closed_chunks_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  const auto size_before = s.open.byte_size();
  s.open.append(t_ms, item.bits);
  // Charged against what was charged before: bytes() (range reads) may
  // have grown the buffer in between.
  deltas.bytes += static_cast<std::ptrdiff_t>(s.open.capacity_bytes()) -
                  static_cast<std::ptrdiff_t>(s.open_charged);
  s.open_charged = s.open.capacity_bytes();
  deltas.payload += static_cast<std::ptrdiff_t>(s.open.byte_size() - size_before);
  ++deltas.samples;
  return Appended::stored;
}

namespace {

// What a range read takes from a series under the shard's mutex.
struct Pending {
  SeriesRef ref = 0;
  std::shared_ptr<const SeriesIdentity> identity;
  std::vector<ChunkPtr> chunks;
  std::vector<std::uint8_t> open;
  std::uint32_t open_count = 0;
};

void decode_into(ChunkReader reader, std::int64_t start_ms, std::int64_t end_ms,
                 std::vector<Sample>& out) {
  Sample s;
  while (reader.next(s.t_ms, s.bits))
    if (s.t_ms >= start_ms && s.t_ms <= end_ms) out.push_back(s);
}

void decode_into(core::MetricType type, std::span<const std::uint8_t> bytes, std::uint32_t count,
                 std::int64_t start_ms, std::int64_t end_ms, std::vector<Sample>& out) {
  decode_into(ChunkReader(type, bytes, count), start_ms, end_ms, out);
}

void finish(std::vector<Pending>& pending, std::int64_t start_ms, std::int64_t end_ms,
            std::vector<SeriesSamples>& out) {
  for (auto& p : pending) {
    SeriesSamples result;
    result.ref = p.ref;
    const auto type = p.identity->type;
    std::size_t most = p.open_count;
    for (const auto& c : p.chunks)
      most += c->count;
    result.samples.reserve(most);
    for (const auto& c : p.chunks)
      decode_into(type, c->bytes(), c->count, start_ms, end_ms, result.samples);
    decode_into(type, p.open, p.open_count, start_ms, end_ms, result.samples);
    if (result.samples.empty()) continue;
    result.identity = std::move(p.identity);
    out.push_back(std::move(result));
  }
}

}  // namespace

namespace {

void take(const std::shared_ptr<const SeriesIdentity>& identity,
          const std::vector<ChunkPtr>& closed, const ChunkWriter& open, SeriesRef ref,
          std::int64_t start_ms, std::int64_t end_ms, std::vector<Pending>& pending) {
  Pending p;
  p.ref = ref;
  p.identity = identity;
  for (const auto& c : closed)
    if (c->min_t <= end_ms && c->max_t >= start_ms) p.chunks.push_back(c);
  if (!open.empty() && open.state().min_t <= end_ms && open.state().max_t >= start_ms) {
    p.open.assign(open.bytes().begin(), open.bytes().end());
    p.open_count = open.count();
  }
  if (!p.chunks.empty() || p.open_count != 0) pending.push_back(std::move(p));
}

}  // namespace

std::vector<SeriesSamples> HistoryStore::read_range(std::span<const SeriesRef> refs,
                                                    std::int64_t start_ms,
                                                    std::int64_t end_ms) const {
  std::vector<Pending> pending;
  for (const SeriesRef ref : refs) {
    Shard& shard = shard_of(ref);
    std::lock_guard lock(shard.mu);
    const Series* s = shard.map.find(ref);
    if (s == nullptr) continue;
    take(s->identity, s->closed, s->open, ref, start_ms, end_ms, pending);
  }
  std::vector<SeriesSamples> out;
  finish(pending, start_ms, end_ms, out);
  return out;
}

std::optional<std::int64_t> HistoryStore::last_timestamp(SeriesRef ref) const {
  Shard& shard = shard_of(ref);
  std::lock_guard lock(shard.mu);
  const Series* s = shard.map.find(ref);
  if (s == nullptr) return std::nullopt;
  std::optional<std::int64_t> out;
  if (!s->open.empty()) out = s->open.state().max_t;
  if (!s->closed.empty())
    out = std::max(out.value_or(s->closed.back()->max_t), s->closed.back()->max_t);
  return out;
}

std::vector<SeriesSamples> HistoryStore::read_range(const Predicate& match, std::int64_t start_ms,
                                                    std::int64_t end_ms) const {
  std::vector<SeriesSamples> out;
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    std::vector<Pending> pending;
    {
      std::lock_guard lock(shards_[i].mu);
      shards_[i].map.for_each([&](SeriesRef ref, const Series& s) {
        if (match(ref, *s.identity))
          take(s.identity, s.closed, s.open, ref, start_ms, end_ms, pending);
      });
    }
    finish(pending, start_ms, end_ms, out);
  }
  return out;
}

namespace {

std::vector<SeriesSamples> collect_named(const HistoryStore& store, std::string_view name,
                                         const HistoryStore::Predicate& match,
                                         std::int64_t start_ms, std::int64_t end_ms, bool newest) {
  std::vector<SeriesSamples> out;
  store.visit_named(
      name, match, start_ms, end_ms, newest,
      [&](SeriesRef ref, const std::shared_ptr<const SeriesIdentity>& identity,
          std::span<const Sample> samples) {
        out.push_back(
            {.ref = ref, .identity = identity, .samples = {samples.begin(), samples.end()}});
      });
  return out;
}

}  // namespace

std::vector<SeriesSamples> HistoryStore::read_range_named(std::string_view name,
                                                          const Predicate& match,
                                                          std::int64_t start_ms,
                                                          std::int64_t end_ms) const {
  return collect_named(*this, name, match, start_ms, end_ms, false);
}

std::vector<SeriesSamples> HistoryStore::read_last_named(std::string_view name,
                                                         const Predicate& match,
                                                         std::int64_t start_ms,
                                                         std::int64_t end_ms) const {
  return collect_named(*this, name, match, start_ms, end_ms, true);
}

namespace {

// The newest sample of a series in [start, end] read off its open chunk's
// writer, when that is the answer: the last sample appended is the newest
// held (time did not go back, no closed chunk reaches later) and lies in
// the range.
std::optional<Sample> newest_from_writer(const std::vector<ChunkPtr>& closed,
                                         const ChunkWriter& open, std::int64_t start_ms,
                                         std::int64_t end_ms) {
  if (open.empty()) return std::nullopt;
  const CodecState& st = open.state();
  const auto last_t = static_cast<std::int64_t>(st.prev_t);
  if (last_t != st.max_t || last_t < start_ms || last_t > end_ms) return std::nullopt;
  for (const auto& c : closed)
    if (c->max_t > last_t) return std::nullopt;
  return Sample{.t_ms = last_t, .bits = st.prev_v};
}

// Keeps the newest sample: the largest time, of equal times the last one.
void keep_newest(std::vector<Sample>& samples) {
  if (samples.size() <= 1) return;
  std::size_t best = 0;
  for (std::size_t i = 1; i < samples.size(); ++i)
    if (samples[i].t_ms >= samples[best].t_ms) best = i;
  samples[0] = samples[best];
  samples.resize(1);
}

}  // namespace

// What visit_named() takes from a series under the shard's mutex: its
// chunks in range, and its open chunk's bytes at [open_at, open_at +
// open_size) of one buffer for the whole shard (one allocation a shard, not
// one a series).
namespace {
struct NamedPending {
  SeriesRef ref = 0;
  std::shared_ptr<const SeriesIdentity> identity;
  std::vector<ChunkPtr> chunks;
  std::size_t open_at = 0;
  std::size_t open_size = 0;
  std::uint32_t open_count = 0;
  // Where the open chunk's copied bytes begin (count 0: at its start).
  ChunkCheckpoint open_from;
};
struct NewestHit {
  SeriesRef ref = 0;
  std::shared_ptr<const SeriesIdentity> identity;
  Sample sample;
};
}  // namespace

// newest: each series' newest sample only (read_last_named).
void HistoryStore::visit_named(std::string_view name, const Predicate& match, std::int64_t start_ms,
                               std::int64_t end_ms, bool newest,
                               const SamplesVisitor& visit) const {
  std::vector<NewestHit> hits;
  std::vector<NamedPending> pending;
  std::vector<std::uint8_t> open_bytes;
  std::vector<Sample> samples;
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    hits.clear();
    pending.clear();
    open_bytes.clear();
    {
      std::lock_guard lock(shards_[i].mu);
      const auto it = shards_[i].by_name.find(name);
      if (it == shards_[i].by_name.end()) continue;
      for (const SeriesRef ref : it->second) {
        const Series* s = shards_[i].map.find(ref);
        if (s == nullptr || (match && !match(ref, *s->identity))) continue;
        if (newest) {
          if (const auto sample = newest_from_writer(s->closed, s->open, start_ms, end_ms)) {
            hits.push_back({.ref = ref, .identity = s->identity, .sample = *sample});
            continue;
          }
        }
        NamedPending p;
        for (const auto& c : s->closed)
          if (c->min_t <= end_ms && c->max_t >= start_ms) p.chunks.push_back(c);
        const ChunkWriter& open = s->open;
        if (!open.empty() && open.state().min_t <= end_ms && open.state().max_t >= start_ms) {
          auto bytes = open.bytes();
          // Only what lies after the newest checkpoint before the range.
          if (const ChunkCheckpoint* from = open.checkpoint_before(start_ms)) {
            p.open_from = *from;
            bytes = bytes.subspan(from->bit / 8);
          }
          p.open_at = open_bytes.size();
          p.open_size = bytes.size();
          p.open_count = open.count();
          open_bytes.insert(open_bytes.end(), bytes.begin(), bytes.end());
        }
        if (p.chunks.empty() && p.open_count == 0) continue;
        p.ref = ref;
        p.identity = s->identity;
        pending.push_back(std::move(p));
      }
    }
    for (const auto& h : hits)
      visit(h.ref, h.identity, std::span<const Sample>(&h.sample, 1));
    for (const auto& p : pending) {
      samples.clear();
      const auto type = p.identity->type;
      for (const auto& c : p.chunks)
        decode_into(type, c->bytes(), c->count, start_ms, end_ms, samples);
      const auto open = std::span<const std::uint8_t>(open_bytes).subspan(p.open_at, p.open_size);
      if (p.open_from.count != 0) {
        decode_into(ChunkReader(type, open, p.open_count, p.open_from), start_ms, end_ms, samples);
      } else {
        decode_into(type, open, p.open_count, start_ms, end_ms, samples);
      }
      if (samples.empty()) continue;
      if (newest) keep_newest(samples);
      visit(p.ref, p.identity, samples);
    }
  }
}

namespace {

// Whether a chunk with these bounds holds a sample in [start, end]: yes
// when either bound is inside (both are sample times), no when the chunk
// ends before or starts after; unknown (nullopt) when the range lies
// strictly between the two.
std::optional<bool> bounds_decide(std::int64_t min_t, std::int64_t max_t, std::int64_t start,
                                  std::int64_t end) {
  if (max_t < start || min_t > end) return false;
  if ((min_t >= start && min_t <= end) || (max_t >= start && max_t <= end)) return true;
  return std::nullopt;
}

// A series that series_in_range() must decode a chunk of to decide.
struct Undecided {
  SeriesEntry entry;
  std::vector<ChunkPtr> chunks;
  std::vector<std::uint8_t> open;
  std::uint32_t open_count = 0;
};

bool any_in_range(core::MetricType type, std::span<const std::uint8_t> bytes, std::uint32_t count,
                  std::int64_t start, std::int64_t end) {
  ChunkReader reader(type, bytes, count);
  std::int64_t t = 0;
  std::uint64_t bits = 0;
  while (reader.next(t, bits))
    if (t >= start && t <= end) return true;
  return false;
}

}  // namespace

std::vector<SeriesEntry> HistoryStore::series_in_range(std::string_view name,
                                                       const Predicate& match,
                                                       std::int64_t start_ms,
                                                       std::int64_t end_ms) const {
  std::vector<SeriesEntry> out;
  std::vector<Undecided> undecided;
  auto visit = [&](SeriesRef ref, const Series& s) {
    if (match && !match(ref, *s.identity)) return;
    Undecided u;
    for (const auto& c : s.closed) {
      const auto d = bounds_decide(c->min_t, c->max_t, start_ms, end_ms);
      if (d && *d) {
        out.push_back({ref, s.identity});
        return;
      }
      if (!d) u.chunks.push_back(c);
    }
    if (!s.open.empty()) {
      const auto d = bounds_decide(s.open.state().min_t, s.open.state().max_t, start_ms, end_ms);
      if (d && *d) {
        out.push_back({ref, s.identity});
        return;
      }
      if (!d) {
        u.open.assign(s.open.bytes().begin(), s.open.bytes().end());
        u.open_count = s.open.count();
      }
    }
    if (!u.chunks.empty() || u.open_count != 0) {
      u.entry = {ref, s.identity};
      undecided.push_back(std::move(u));
    }
  };
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    std::lock_guard lock(shards_[i].mu);
    if (name.empty()) {
      shards_[i].map.for_each(visit);
      continue;
    }
    const auto it = shards_[i].by_name.find(name);
    if (it == shards_[i].by_name.end()) continue;
    for (const SeriesRef ref : it->second) {
      const Series* s = shards_[i].map.find(ref);
      if (s != nullptr) visit(ref, *s);
    }
  }
  // Outside the shards' mutexes: closed chunks are immutable, the open one
  // was copied.
  for (auto& u : undecided) {
    const auto type = u.entry.identity->type;
    bool found = false;
    for (const auto& c : u.chunks) {
      bounds_decodes_.fetch_add(1, std::memory_order_relaxed);
      if (any_in_range(type, c->bytes(), c->count, start_ms, end_ms)) {
        found = true;
        break;
      }
    }
    if (!found && u.open_count != 0) {
      bounds_decodes_.fetch_add(1, std::memory_order_relaxed);
      found = any_in_range(type, u.open, u.open_count, start_ms, end_ms);
    }
    if (found) out.push_back(std::move(u.entry));
  }
  return out;
}

std::vector<std::string> HistoryStore::names() const {
  std::vector<std::string> out;
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    std::lock_guard lock(shards_[i].mu);
    for (const auto& [name, refs] : shards_[i].by_name)
      if (!refs.empty()) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void HistoryStore::unlist_name(Shard& shard, const Series& s) {
  const auto it = shard.by_name.find(s.identity->id);
  if (it == shard.by_name.end()) return;
  auto& refs = it->second;
  if (s.name_pos < refs.size() - 1) {
    refs[s.name_pos] = refs.back();
    if (Series* moved = shard.map.find(refs[s.name_pos])) moved->name_pos = s.name_pos;
  }
  refs.pop_back();
  if (refs.empty()) shard.by_name.erase(it);
}

std::vector<SeriesEntry> HistoryStore::series() const {
  std::vector<SeriesEntry> out;
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    std::lock_guard lock(shards_[i].mu);
    shards_[i].map.for_each([&](SeriesRef ref, const Series& s) {
      out.push_back({ref, s.identity});
    });
  }
  return out;
}

HistoryStats HistoryStore::stats() const {
  HistoryStats st;
  st.series = series_.load(std::memory_order_relaxed);
  st.samples = samples_.load(std::memory_order_relaxed);
  st.closed_chunks = closed_chunks_.load(std::memory_order_relaxed);
  st.bytes = bytes_.load(std::memory_order_relaxed);
  st.payload_bytes = payload_bytes_.load(std::memory_order_relaxed);
  st.evicted_chunks = evicted_chunks_.load(std::memory_order_relaxed);
  st.evicted_samples = evicted_samples_.load(std::memory_order_relaxed);
  st.evicted_bytes = evicted_bytes_.load(std::memory_order_relaxed);
  st.expired_chunks = expired_chunks_.load(std::memory_order_relaxed);
  st.expired_samples = expired_samples_.load(std::memory_order_relaxed);
  st.eviction_passes = eviction_passes_.load(std::memory_order_relaxed);
  return st;
}

HistoryStats HistoryStore::maintain() {
  std::lock_guard pass(maintain_mu_);
  struct Dropped {
    std::uint64_t chunks = 0, samples = 0, bytes = 0, series = 0;
  };
  Dropped expired, evicted;

  // Every drop goes through these two, with the shard's mutex held.
  auto drop_closed = [this](Series& s, std::size_t index, Dropped& d) {
    const ClosedChunk& c = *s.closed[index];
    const std::size_t cost = closed_cost(c);
    d.chunks += 1;
    d.samples += c.count;
    d.bytes += cost;
    bytes_.fetch_sub(cost, std::memory_order_relaxed);
    payload_bytes_.fetch_sub(c.size, std::memory_order_relaxed);
    samples_.fetch_sub(c.count, std::memory_order_relaxed);
    closed_chunks_.fetch_sub(1, std::memory_order_relaxed);
    s.closed.erase(s.closed.begin() + static_cast<std::ptrdiff_t>(index));
  };
  auto drop_open = [this](Series& s, Dropped& d) {
    const std::size_t cost = s.open_charged;
    d.chunks += 1;
    d.samples += s.open.count();
    d.bytes += cost;
    bytes_.fetch_sub(cost, std::memory_order_relaxed);
    s.open_charged = 0;
    payload_bytes_.fetch_sub(s.open.byte_size(), std::memory_order_relaxed);
    samples_.fetch_sub(s.open.count(), std::memory_order_relaxed);
    s.open = ChunkWriter(s.identity->type);
  };
  // Erases a series left without samples.
  auto erase_if_empty = [this](Shard& shard, SeriesRef ref, Series& s, Dropped& d) {
    if (!s.closed.empty() || !s.open.empty()) return;
    bytes_.fetch_sub(s.fixed_cost + s.closed.capacity() * sizeof(ChunkPtr),
                     std::memory_order_relaxed);
    series_.fetch_sub(1, std::memory_order_relaxed);
    d.series += 1;
    unlist_name(shard, s);
    shard.map.erase(ref);
  };

  if (options_.retention.count() > 0) {
    const std::int64_t cutoff = to_ms(options_.clock->system_now()) - options_.retention.count();
    for (std::size_t i = 0; i <= shard_mask_; ++i) {
      Shard& shard = shards_[i];
      std::lock_guard lock(shard.mu);
      std::vector<SeriesRef> emptied;
      shard.map.for_each([&](SeriesRef ref, Series& s) {
        for (std::size_t k = s.closed.size(); k-- > 0;)
          if (s.closed[k]->max_t < cutoff) drop_closed(s, k, expired);
        if (!s.open.empty() && s.open.state().max_t < cutoff) drop_open(s, expired);
        if (s.closed.empty() && s.open.empty()) emptied.push_back(ref);
      });
      for (const SeriesRef ref : emptied)
        erase_if_empty(shard, ref, *shard.map.find(ref), expired);
    }
  }

  const auto over = [this] {
    return options_.max_bytes != 0 && bytes_.load(std::memory_order_relaxed) > options_.max_bytes;
  };
  // Oldest first: each round takes every series' oldest closed chunk, in
  // order of their newest sample, until the store fits.
  while (over()) {
    std::vector<std::tuple<std::int64_t, std::size_t, SeriesRef>> candidates;
    for (std::size_t i = 0; i <= shard_mask_; ++i) {
      std::lock_guard lock(shards_[i].mu);
      shards_[i].map.for_each([&, i](SeriesRef ref, const Series& s) {
        if (!s.closed.empty()) candidates.emplace_back(s.closed.front()->max_t, i, ref);
      });
    }
    if (candidates.empty()) break;
    std::sort(candidates.begin(), candidates.end());
    for (const auto& [t, i, ref] : candidates) {
      if (!over()) break;
      std::lock_guard lock(shards_[i].mu);
      Series* s = shards_[i].map.find(ref);
      if (s == nullptr || s->closed.empty()) continue;
      drop_closed(*s, 0, evicted);
      erase_if_empty(shards_[i], ref, *s, evicted);
    }
  }
  // Only open chunks left: the oldest of those.
  if (over()) {
    std::vector<std::tuple<std::int64_t, std::size_t, SeriesRef>> candidates;
    for (std::size_t i = 0; i <= shard_mask_; ++i) {
      std::lock_guard lock(shards_[i].mu);
      shards_[i].map.for_each([&, i](SeriesRef ref, const Series& s) {
        if (!s.open.empty()) candidates.emplace_back(s.open.state().max_t, i, ref);
      });
    }
    std::sort(candidates.begin(), candidates.end());
    for (const auto& [t, i, ref] : candidates) {
      if (!over()) break;
      std::lock_guard lock(shards_[i].mu);
      Series* s = shards_[i].map.find(ref);
      if (s == nullptr || s->open.empty()) continue;
      drop_open(*s, evicted);
      erase_if_empty(shards_[i], ref, *s, evicted);
    }
  }

  expired_chunks_.fetch_add(expired.chunks, std::memory_order_relaxed);
  expired_samples_.fetch_add(expired.samples, std::memory_order_relaxed);
  evicted_chunks_.fetch_add(evicted.chunks, std::memory_order_relaxed);
  evicted_samples_.fetch_add(evicted.samples, std::memory_order_relaxed);
  evicted_bytes_.fetch_add(evicted.bytes, std::memory_order_relaxed);
  if (evicted.chunks > 0) eviction_passes_.fetch_add(1, std::memory_order_relaxed);

  if (options_.log && (expired.chunks > 0 || evicted.chunks > 0)) {
    std::string line = "history:";
    if (expired.chunks > 0)
      line += " retention dropped " + std::to_string(expired.chunks) + " chunks (" +
              std::to_string(expired.samples) + " samples, " + std::to_string(expired.bytes) +
              " bytes);";
    if (evicted.chunks > 0)
      line += " memory cap " + std::to_string(options_.max_bytes) + " bytes: evicted " +
              std::to_string(evicted.chunks) + " oldest chunks (" +
              std::to_string(evicted.samples) + " samples, " + std::to_string(evicted.bytes) +
              " bytes);";
    const auto series_gone = expired.series + evicted.series;
    if (series_gone > 0) line += " " + std::to_string(series_gone) + " series left empty;";
    line += " now " + std::to_string(bytes_.load(std::memory_order_relaxed)) + " bytes";
    options_.log(line);
  }
  return stats();
}

std::vector<ChunkExport> HistoryStore::take_closed() {
  std::vector<ChunkExport> out;
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    std::lock_guard lock(shards_[i].mu);
    for (auto& c : shards_[i].closed_since)
      out.push_back(std::move(c));
    shards_[i].closed_since.clear();
  }
  return out;
}

std::vector<ChunkExport> HistoryStore::open_chunks() const {
  std::vector<ChunkExport> out;
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    std::lock_guard lock(shards_[i].mu);
    shards_[i].map.for_each([&](SeriesRef ref, const Series& s) {
      if (!s.open.empty())
        out.push_back({ref, s.identity, s.next_seq, s.open.count(), s.open.state().max_t,
                       std::vector<std::uint8_t>(s.open.bytes().begin(), s.open.bytes().end())});
    });
  }
  return out;
}

std::optional<std::int64_t> HistoryStore::retention_cutoff_ms() const {
  if (options_.retention.count() <= 0) return std::nullopt;
  return to_ms(options_.clock->system_now()) - options_.retention.count();
}

bool HistoryStore::restore(const ChunkExport& chunk, bool open) {
  if (!chunk.identity || chunk.count == 0) return false;
  const auto type = chunk.identity->type;
  auto writer = ChunkWriter::resume(type, chunk.bytes, chunk.count);
  if (!writer) return false;
  Shard& shard = shard_of(chunk.ref);
  std::lock_guard lock(shard.mu);
  Series* found = shard.map.find(chunk.ref);
  if (found == nullptr) found = add_series(shard, chunk.ref, chunk.identity);
  Series& s = *found;
  if (s.open.type() != type) return false;
  if (open) {
    if (chunk.seq < s.next_seq || !s.open.empty()) return false;
    s.next_seq = chunk.seq;
    s.open_charged = writer->capacity_bytes();
    bytes_.fetch_add(s.open_charged, std::memory_order_relaxed);
    payload_bytes_.fetch_add(writer->byte_size(), std::memory_order_relaxed);
    samples_.fetch_add(writer->count(), std::memory_order_relaxed);
    s.open = std::move(*writer);
    return true;
  }
  if (chunk.seq < s.next_seq || !s.open.empty()) return false;  // a duplicate, or out of order
  auto closed = ChunkPtr::make(writer->state(), writer->bytes());
  const auto slots_before = s.closed.capacity();
  bytes_.fetch_add(closed_cost(*closed), std::memory_order_relaxed);
  payload_bytes_.fetch_add(closed->size, std::memory_order_relaxed);
  samples_.fetch_add(closed->count, std::memory_order_relaxed);
  closed_chunks_.fetch_add(1, std::memory_order_relaxed);
  s.closed.push_back(std::move(closed));
  bytes_.fetch_add((s.closed.capacity() - slots_before) * sizeof(ChunkPtr),
                   std::memory_order_relaxed);
  s.next_seq = chunk.seq + 1;
  return true;
}

}  // namespace metrics::history
