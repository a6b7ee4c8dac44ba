// The shards' index: an open-addressing hash table of 64-bit keys (linear
// probing, backward-shift deletion) over values kept in a deque, which
// never moves them. A lookup probes a packed key array (one cache line for
// several probes) and then touches the value: two cache misses for a cold
// series where std::unordered_map takes three (bucket, node before, node).
//
// Thread-safety: none (the shard's mutex guards it). Pointers to values
// stay valid until their key is erased.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

namespace metrics::history::detail {

// The splitmix64 finaliser: dense small keys spread over the table.
[[nodiscard]] constexpr std::uint64_t mix64(std::uint64_t k) noexcept {
  k ^= k >> 30;
  k *= 0xbf58476d1ce4e5b9ull;
  k ^= k >> 27;
  k *= 0x94d049bb133111ebull;
  k ^= k >> 31;
  return k;
}

template <typename V>
class FlatMap {
 public:
  [[nodiscard]] V* find(std::uint64_t key) noexcept {
    if (keys_.empty()) return nullptr;
    for (std::size_t i = index(key);; i = (i + 1) & mask()) {
      if (slot_[i] == kEmpty) return nullptr;
      if (keys_[i] == key) return &*pool_[slot_[i]];
    }
  }
  [[nodiscard]] const V* find(std::uint64_t key) const noexcept {
    return const_cast<FlatMap*>(this)->find(key);
  }

  // Asks the CPU for the lines find(key) reads first (a hint, no effect).
  void prefetch(std::uint64_t key) const noexcept {
    if (keys_.empty()) return;
    const std::size_t i = index(key);
    __builtin_prefetch(keys_.data() + i);
    __builtin_prefetch(slot_.data() + i);
  }

  // The value of `key`, made from `args` when absent; second: made.
  template <typename... Args>
  std::pair<V*, bool> try_emplace(std::uint64_t key, Args&&... args) {
    if (V* v = find(key)) return {v, false};
    if ((size_ + 1) * 4 > keys_.size() * 3) grow();
    std::uint32_t at = 0;
    if (!free_.empty()) {
      at = free_.back();
      free_.pop_back();
    } else {
      at = static_cast<std::uint32_t>(pool_.size());
      pool_.emplace_back();
    }
    pool_[at].emplace(std::forward<Args>(args)...);
    place(key, at);
    ++size_;
    return {&*pool_[at], true};
  }

  bool erase(std::uint64_t key) {
    if (keys_.empty()) return false;
    std::size_t i = index(key);
    while (true) {
      if (slot_[i] == kEmpty) return false;
      if (keys_[i] == key) break;
      i = (i + 1) & mask();
    }
    pool_[slot_[i]].reset();
    free_.push_back(slot_[i]);
    slot_[i] = kEmpty;
    --size_;
    // Shift back the entries after the hole that would not be found past it.
    for (std::size_t j = (i + 1) & mask(); slot_[j] != kEmpty; j = (j + 1) & mask()) {
      const std::size_t ideal = index(keys_[j]);
      const bool movable = i <= j ? (ideal <= i || ideal > j) : (ideal <= i && ideal > j);
      if (movable) {
        keys_[i] = keys_[j];
        slot_[i] = slot_[j];
        slot_[j] = kEmpty;
        i = j;
      }
    }
    return true;
  }

  // f(key, V&) for every entry; f must not insert or erase.
  template <typename F>
  void for_each(F&& f) {
    for (std::size_t i = 0; i < keys_.size(); ++i)
      if (slot_[i] != kEmpty) f(keys_[i], *pool_[slot_[i]]);
  }
  template <typename F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < keys_.size(); ++i)
      if (slot_[i] != kEmpty) f(keys_[i], std::as_const(*pool_[slot_[i]]));
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  // Bytes of the table and the value pool (neither shrinks).
  [[nodiscard]] std::size_t capacity_bytes() const noexcept {
    return keys_.capacity() * (sizeof(std::uint64_t) + sizeof(std::uint32_t)) +
           pool_.size() * sizeof(std::optional<V>) + free_.capacity() * sizeof(std::uint32_t);
  }

 private:
  static constexpr std::uint32_t kEmpty = 0xffffffffu;

  [[nodiscard]] std::size_t mask() const noexcept { return keys_.size() - 1; }
  [[nodiscard]] std::size_t index(std::uint64_t key) const noexcept {
    return static_cast<std::size_t>(mix64(key)) & mask();
  }
  void place(std::uint64_t key, std::uint32_t at) noexcept {
    std::size_t i = index(key);
    while (slot_[i] != kEmpty)
      i = (i + 1) & mask();
    keys_[i] = key;
    slot_[i] = at;
  }
  void grow() {
    std::vector<std::uint64_t> keys = std::move(keys_);
    std::vector<std::uint32_t> slot = std::move(slot_);
    const std::size_t n = keys.empty() ? 16 : keys.size() * 2;
    keys_.assign(n, 0);
    slot_.assign(n, kEmpty);
    for (std::size_t i = 0; i < keys.size(); ++i)
      if (slot[i] != kEmpty) place(keys[i], slot[i]);
  }

  std::vector<std::uint64_t> keys_;
  std::vector<std::uint32_t> slot_;  // index into pool_, or kEmpty
  std::deque<std::optional<V>> pool_;
  std::vector<std::uint32_t> free_;
  std::size_t size_ = 0;
};

}  // namespace metrics::history::detail
