#include "metrics/series/index.hpp"

#include <algorithm>
#include <unordered_set>
#include <utility>

#include "metrics/core/errors.hpp"

namespace metrics::series {
namespace {

constexpr char kSep = '\xFF';  // never in UTF-8, so instance and job stay apart

std::string make_pair_key(std::string_view instance, std::string_view job) {
  std::string out;
  out.reserve(instance.size() + 1 + job.size());
  out.append(instance);
  out.push_back(kSep);
  out.append(job);
  return out;
}

std::pair<std::string_view, std::string_view> split_pair(std::string_view key) {
  const auto sep = key.find(kSep);
  return {key.substr(0, sep), key.substr(sep + 1)};
}

bool is_up(std::int64_t last_ms, std::int64_t now_ms, std::int64_t stale_after_ms) {
  return now_ms - last_ms < stale_after_ms;
}

core::Labels liveness_labels(std::string_view instance, std::string_view job) {
  std::vector<core::Label> labels{{"instance", std::string(instance)}};
  if (!job.empty()) labels.push_back({"job", std::string(job)});
  return core::Labels::make(std::move(labels));
}

// The predicate that finds the slot of `view` in a shard's table (the table
// compares the hashes first).
auto same_as(core::SeriesView view) noexcept {
  return [view](const auto& slot) noexcept {
    return core::SeriesEqual{}(view, core::SeriesView(slot.entry->series));
  };
}

}  // namespace

std::optional<std::string> liveness_pair(const core::Labels& labels) {
  auto instance = labels.get("instance");
  if (!instance) return std::nullopt;
  return make_pair_key(*instance, labels.get("job").value_or(""));
}

// ---- Reservation

SeriesIndex::Reservation::Reservation(Reservation&& other) noexcept
    : index_(std::exchange(other.index_, nullptr)),
      entries_(std::move(other.entries_)),
      ids_(std::move(other.ids_)),
      pairs_(std::move(other.pairs_)),
      created_(other.created_) {}

SeriesIndex::Reservation& SeriesIndex::Reservation::operator=(Reservation&& other) noexcept {
  if (this != &other) {
    release();
    index_ = std::exchange(other.index_, nullptr);
    entries_ = std::move(other.entries_);
    ids_ = std::move(other.ids_);
    pairs_ = std::move(other.pairs_);
    created_ = other.created_;
  }
  return *this;
}

SeriesIndex::Reservation::~Reservation() {
  release();
}

void SeriesIndex::Reservation::commit(std::int64_t received_ms, bool liveness) noexcept {
  if (index_ == nullptr) return;
  for (Entry* e : entries_) {
    // Two requests may commit one series out of order: keep the later time.
    auto last = e->last_write_ms.load(std::memory_order_relaxed);
    while (last < received_ms &&
           !e->last_write_ms.compare_exchange_weak(last, received_ms, std::memory_order_relaxed)) {
    }
    // committed before the hold is dropped: unhold() of a failed request
    // that shares the entry must see it (both seq_cst).
    if (!e->committed.load()) e->committed.store(true);
    e->pending.fetch_sub(1);
  }
  for (const auto& pair : pairs_) {
    if (!liveness) break;
    try {
      index_->touch(pair, received_ms);
    } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; liveness lags one push
    }
  }
  entries_.clear();
  index_ = nullptr;
}

void SeriesIndex::Reservation::release() noexcept {
  if (index_ == nullptr) return;
  for (Entry* e : entries_) {
    index_->unhold(e);
  }
  entries_.clear();
  index_ = nullptr;
}

std::uint64_t SeriesIndex::Reservation::id(std::size_t i) const noexcept {
  return ids_[i];
}

// ---- SeriesIndex

SeriesIndex::SeriesIndex(Limits limits) : limits_(limits) {}

SeriesIndex::~SeriesIndex() = default;

std::size_t SeriesIndex::shard_index_of(const core::Labels& labels, std::size_t hash) noexcept {
  // Labelled series by their labels alone (an instance's series share a
  // shard, so a request locks once); unlabelled ones spread by name.
  return (labels.empty() ? hash : labels.hash()) % kShards;
}

bool SeriesIndex::take(const std::optional<std::string_view>& instance, std::string& which) {
  std::lock_guard lock(counts_mu_);
  if (limits_.max_series != 0 && total_ >= limits_.max_series) {
    which = "--max-series limit of " + std::to_string(limits_.max_series) + " series reached";
    return false;
  }
  if (instance) {
    auto it = per_instance_.find(*instance);
    const std::uint64_t have = it == per_instance_.end() ? 0 : it->second;
    if (limits_.max_series_per_instance != 0 && have >= limits_.max_series_per_instance) {
      which = "--max-series-per-instance limit of " +
              std::to_string(limits_.max_series_per_instance) + " series reached for instance \"" +
              std::string(instance->substr(0, 128)) + "\"";
      return false;
    }
    if (it == per_instance_.end()) {
      per_instance_.emplace(std::string(*instance), 1);
    } else {
      ++it->second;
    }
  }
  ++total_;
  return true;
}

void SeriesIndex::give_back(const std::optional<std::string_view>& instance) noexcept {
  std::lock_guard lock(counts_mu_);
  --total_;
  if (instance) {
    auto it = per_instance_.find(*instance);
    if (it != per_instance_.end() && --it->second == 0) per_instance_.erase(it);
  }
}

void SeriesIndex::unhold(Entry* entry) noexcept {
  Shard& shard = shards_[entry->shard];
  std::optional<std::string> instance;
  bool erased = false;
  {
    std::lock_guard lock(shard.mu);
    if (entry->pending.fetch_sub(1) != 1 || entry->committed.load()) return;
    Slot* slot = shard.table.find(
        entry->hash, [entry](const Slot& s) noexcept { return s.entry.get() == entry; });
    if (slot == nullptr) return;
    if (auto v = entry->series.labels.get("instance")) instance.emplace(*v);
    shard.table.erase(slot);  // frees the entry
    erased = true;
  }
  if (erased) give_back(instance);
}

namespace {

// The distinct (instance, job)s of one request, as views into its labels.
// A linear scan while there are few (an envelope has one), a hash set once
// there are many (remote write in brings thousands of instances in one
// request, and a scan per run of equal labels was quadratic).
class PairSet {
 public:
  using Pair = std::pair<std::string_view, std::string_view>;
  // True when p was not there yet.
  bool insert(const Pair& p) {
    if (!hashed_.empty()) return hashed_.insert(p).second;
    if (std::find(few_.begin(), few_.end(), p) != few_.end()) return false;
    few_.push_back(p);
    if (few_.size() > kFew) hashed_.insert(few_.begin(), few_.end());
    return true;
  }

 private:
  static constexpr std::size_t kFew = 8;
  struct PairHash {
    std::size_t operator()(const Pair& p) const noexcept {
      const std::size_t a = std::hash<std::string_view>{}(p.first);
      return a ^ (std::hash<std::string_view>{}(p.second) + 0x9e3779b97f4a7c15ULL + (a << 6) +
                  (a >> 2));
    }
  };
  std::vector<Pair> few_;
  std::unordered_set<Pair, PairHash> hashed_;
};

}  // namespace

SeriesIndex::Reservation SeriesIndex::reserve(std::span<const core::Update> merged, bool liveness) {
  Reservation r;
  r.index_ = this;
  r.entries_.reserve(merged.size());
  // The series' hashes first (held in ids_ until each is replaced by its
  // id), so that the home slots of a shard's series can be prefetched as
  // soon as its lock is taken.
  r.ids_.resize(merged.size());
  for (std::size_t i = 0; i < merged.size(); ++i) {
    r.ids_[i] = core::SeriesHash{}(core::SeriesView(merged[i]));
  }
  std::string_view last_instance;
  std::string_view last_job;
  bool have_last = false;
  const core::Labels* last_labels = nullptr;
  // The request's distinct (instance, job)s so far: an envelope has one,
  // remote write in as many as it has instances.
  PairSet seen;
  // Held across updates of one shard: an envelope's series share a shard,
  // so the whole request takes one lock. Declared after r, so it is
  // released before r gives anything back.
  std::unique_lock<std::mutex> lock;
  std::size_t locked = kShards;
  // The updates before this one had their home slots prefetched.
  std::size_t prefetched = 0;
  for (std::size_t i = 0; i < merged.size(); ++i) {
    const core::Update& u = merged[i];
    const core::SeriesView view(u);
    const auto hash = static_cast<std::size_t>(r.ids_[i]);
    const std::size_t shard_index = shard_index_of(*view.labels, hash);
    Shard& shard = shards_[shard_index];
    if (shard_index != locked) {
      if (lock.owns_lock()) lock.unlock();
      lock = std::unique_lock(shard.mu);
      locked = shard_index;
    }
    // Keeps the home slots of the next updates of this shard loading (all
    // of an envelope's are in one shard): their misses overlap.
    prefetched = std::max(prefetched, i);
    while (prefetched < merged.size() && prefetched < i + kPrefetchAhead) {
      const auto h = static_cast<std::size_t>(r.ids_[prefetched]);
      if (shard_index_of(merged[prefetched].labels, h) != shard_index) break;
      shard.table.prefetch(h);
      ++prefetched;
    }
    Entry* entry = nullptr;
    if (Slot* slot = shard.table.find(hash, same_as(view))) {
      entry = slot->entry.get();
      entry->pending.fetch_add(1);
    } else {
      lock.unlock();
      locked = kShards;
      // New: count it first (the limits), then insert; another request
      // may have inserted it meanwhile, then ours was not new after all.
      std::string which;
      const auto instance = u.labels.get("instance");
      if (!take(instance, which)) throw core::LimitExceeded(which);  // r releases the rest
      lock = std::unique_lock(shard.mu);
      locked = shard_index;
      bool created = false;
      try {
        auto [made, inserted] = shard.table.try_emplace(hash, same_as(view), [&](Slot& s) {
          auto fresh = std::make_unique<Entry>(hash, core::SeriesKey::of(u),
                                               static_cast<std::uint32_t>(shard_index));
          fresh->id = next_id_.fetch_add(1, std::memory_order_relaxed);
          s.hash = hash;
          s.entry = std::move(fresh);
        });
        entry = made->entry.get();
        created = inserted;
      } catch (...) {
        lock.unlock();
        locked = kShards;
        give_back(instance);
        throw;
      }
      if (created) {
        entry->pending.store(1);
        ++r.created_;
      } else {
        entry->pending.fetch_add(1);
        lock.unlock();
        locked = kShards;
        give_back(instance);
      }
    }
    r.entries_.push_back(entry);
    r.ids_[i] = entry->id;

    // The (instance, job) of the request: an envelope gives every update
    // the same labels, so they are read once per run of equal labels.
    if (!liveness) continue;
    if (last_labels != nullptr && *last_labels == u.labels) continue;
    last_labels = &u.labels;
    if (auto instance = u.labels.get("instance")) {
      const auto job = u.labels.get("job").value_or("");
      if (!have_last || *instance != last_instance || job != last_job) {
        have_last = true;
        last_instance = *instance;
        last_job = job;
        if (seen.insert({*instance, job})) r.pairs_.push_back(make_pair_key(*instance, job));
      }
    }
  }
  return r;
}

void SeriesIndex::load(const core::SeriesKey& key, std::int64_t last_write_ms) {
  const core::SeriesView view(key);
  const std::size_t hash = core::SeriesHash{}(view);
  const std::size_t shard_index = shard_index_of(*view.labels, hash);
  Shard& shard = shards_[shard_index];
  bool created = false;
  {
    std::lock_guard lock(shard.mu);
    auto [slot, inserted] = shard.table.try_emplace(hash, same_as(view), [&](Slot& s) {
      auto fresh = std::make_unique<Entry>(hash, key, static_cast<std::uint32_t>(shard_index));
      fresh->id = next_id_.fetch_add(1, std::memory_order_relaxed);
      fresh->committed.store(true);
      s.hash = hash;
      s.entry = std::move(fresh);
    });
    created = inserted;
    auto& last = slot->entry->last_write_ms;
    if (last.load() < last_write_ms) last.store(last_write_ms);
  }
  if (created) {
    std::lock_guard lock(counts_mu_);
    ++total_;
    if (auto instance = key.labels.get("instance")) {
      auto it = per_instance_.find(*instance);
      if (it == per_instance_.end()) {
        per_instance_.emplace(std::string(*instance), 1);
      } else {
        ++it->second;
      }
    }
  }
  if (auto pair = liveness_pair(key.labels)) touch(*pair, last_write_ms);
}

void SeriesIndex::load(std::span<const core::Point> stored, std::int64_t unknown_ms) {
  for (const auto& p : stored) {
    load(core::SeriesKey::of(p), p.timestamp_ms != 0 ? p.timestamp_ms : unknown_ms);
  }
}

std::size_t SeriesIndex::remove(std::span<const core::SeriesKey> keys, std::int64_t cutoff_ms) {
  std::size_t removed = 0;
  for (const auto& key : keys) {
    const core::SeriesView view(key);
    const std::size_t hash = core::SeriesHash{}(view);
    Shard& shard = shards_[shard_index_of(*view.labels, hash)];
    std::optional<std::string> instance;
    {
      std::lock_guard lock(shard.mu);
      Slot* slot = shard.table.find(hash, same_as(view));
      if (slot == nullptr) continue;
      const Entry& e = *slot->entry;
      // Written again meanwhile, or being written: it lives on (the write
      // brings it back into the storage).
      if (e.pending.load() != 0 || e.last_write_ms.load() >= cutoff_ms) continue;
      if (auto v = key.labels.get("instance")) instance.emplace(*v);
      shard.table.erase(slot);
    }
    give_back(instance);
    ++removed;
  }
  std::lock_guard lock(live_mu_);
  std::erase_if(live_, [cutoff_ms](const auto& kv) { return kv.second < cutoff_ms; });
  return removed;
}

std::optional<SeriesIndex::Found> SeriesIndex::find(core::SeriesView key) const {
  const std::size_t hash = core::SeriesHash{}(key);
  Shard& shard = shards_[shard_index_of(*key.labels, hash)];
  std::lock_guard lock(shard.mu);
  const Slot* slot = shard.table.find(hash, same_as(key));
  if (slot == nullptr) return std::nullopt;
  return Found{slot->entry->id, slot->entry->last_write_ms.load()};
}

std::uint64_t SeriesIndex::size() const noexcept {
  std::lock_guard lock(counts_mu_);
  return total_;
}

std::uint64_t SeriesIndex::instance_size(std::string_view instance) const {
  std::lock_guard lock(counts_mu_);
  auto it = per_instance_.find(instance);
  return it == per_instance_.end() ? 0 : it->second;
}

void SeriesIndex::touch(std::string_view pair, std::int64_t ms) {
  std::lock_guard lock(live_mu_);
  auto it = live_.find(pair);
  if (it == live_.end()) {
    live_.emplace(std::string(pair), ms);
  } else if (it->second < ms) {
    it->second = ms;
  }
}

std::vector<Liveness> SeriesIndex::liveness(std::int64_t now_ms,
                                            std::int64_t stale_after_ms) const {
  std::vector<Liveness> out;
  {
    std::lock_guard lock(live_mu_);
    out.reserve(live_.size());
    for (const auto& [key, ms] : live_) {
      auto [instance, job] = split_pair(key);
      out.push_back(
          {std::string(instance), std::string(job), ms, is_up(ms, now_ms, stale_after_ms)});
    }
  }
  std::sort(out.begin(), out.end(), [](const Liveness& a, const Liveness& b) {
    return a.instance != b.instance ? a.instance < b.instance : a.job < b.job;
  });
  return out;
}

std::optional<Liveness> SeriesIndex::liveness(std::string_view instance, std::string_view job,
                                              std::int64_t now_ms,
                                              std::int64_t stale_after_ms) const {
  const auto key = make_pair_key(instance, job);
  std::lock_guard lock(live_mu_);
  auto it = live_.find(key);
  if (it == live_.end()) return std::nullopt;
  return Liveness{std::string(instance), std::string(job), it->second,
                  is_up(it->second, now_ms, stale_after_ms)};
}

namespace {

core::Point synthesized(std::string_view name, const Liveness& l, core::Labels labels) {
  const double value =
      name == kAgentUp ? (l.up ? 1.0 : 0.0) : static_cast<double>(l.last_push_ms) / 1000.0;
  auto p = core::Point::gauge(std::string(name), value, std::move(labels));
  p.timestamp_ms = l.last_push_ms;
  return p;
}

}  // namespace

std::vector<core::Point> SeriesIndex::liveness_points(std::int64_t now_ms,
                                                      std::int64_t stale_after_ms) const {
  std::vector<core::Point> out;
  for (const auto& l : liveness(now_ms, stale_after_ms)) {
    auto labels = liveness_labels(l.instance, l.job);
    out.push_back(synthesized(kAgentLastPush, l, labels));
    out.push_back(synthesized(kAgentUp, l, std::move(labels)));
  }
  std::sort(out.begin(), out.end(), core::point_less);
  return out;
}

std::optional<core::Point> SeriesIndex::liveness_point(std::string_view name,
                                                       const core::Labels& labels,
                                                       std::int64_t now_ms,
                                                       std::int64_t stale_after_ms) const {
  if (name != kAgentUp && name != kAgentLastPush) return std::nullopt;
  auto instance = labels.get("instance");
  if (!instance) return std::nullopt;
  const auto job = labels.get("job").value_or("");
  if (labels.size() != (job.empty() ? 1U : 2U)) return std::nullopt;
  auto l = liveness(*instance, job, now_ms, stale_after_ms);
  if (!l) return std::nullopt;
  return synthesized(name, *l, labels);
}

}  // namespace metrics::series
