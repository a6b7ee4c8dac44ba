// The shards' index: an open-addressing hash table (linear probing,
// backward-shift deletion) whose entries are {key, pointer to the value}
// side by side, over values kept in fixed blocks that never move them and
// are aligned as the value asks. A lookup of a cold key is one cache miss
// for the entry (key and pointer on one line) and then the value's own
// lines: the earlier layout (keys, slots and a std::deque in three places)
// took three or four.
//
// Thread-safety: none (the shard's mutex guards it). Pointers to values
// stay valid until their key is erased.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
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
  FlatMap() = default;
  FlatMap(const FlatMap&) = delete;
  FlatMap& operator=(const FlatMap&) = delete;
  ~FlatMap() {
    for (const Entry& e : entries_)
      if (e.value != nullptr) e.value->~V();
  }

  [[nodiscard]] V* find(std::uint64_t key) noexcept {
    if (entries_.empty()) return nullptr;
    for (std::size_t i = index(key);; i = (i + 1) & mask()) {
      const Entry& e = entries_[i];
      if (e.value == nullptr) return nullptr;
      if (e.key == key) return e.value;
    }
  }
  [[nodiscard]] const V* find(std::uint64_t key) const noexcept {
    return const_cast<FlatMap*>(this)->find(key);
  }

  // Asks the CPU for the line find(key) reads first (a hint, no effect).
  void prefetch(std::uint64_t key) const noexcept {
    if (entries_.empty()) return;
    __builtin_prefetch(entries_.data() + index(key));
  }

  // The value of `key`, made from `args` when absent; second: made.
  template <typename... Args>
  std::pair<V*, bool> try_emplace(std::uint64_t key, Args&&... args) {
    if (V* v = find(key)) return {v, false};
    if ((size_ + 1) * 4 > entries_.size() * 3) grow();
    void* at = nullptr;
    const bool reused = !free_.empty();
    if (reused) {
      at = free_.back();
    } else {
      if (blocks_.empty() || used_in_last_ == block_size(blocks_.size() - 1)) {
        blocks_.reserve(blocks_.size() + 1);
        blocks_.push_back(std::make_unique<Slot[]>(block_size(blocks_.size())));
        slot_bytes_ += block_size(blocks_.size() - 1) * sizeof(Slot);
        used_in_last_ = 0;
      }
      at = blocks_.back()[used_in_last_].bytes;
    }
    V* v = new (at) V(std::forward<Args>(args)...);
    if (reused) {
      free_.pop_back();
    } else {
      ++used_in_last_;
    }
    place(key, v);
    ++size_;
    return {v, true};
  }

  bool erase(std::uint64_t key) {
    if (entries_.empty()) return false;
    std::size_t i = index(key);
    while (true) {
      if (entries_[i].value == nullptr) return false;
      if (entries_[i].key == key) break;
      i = (i + 1) & mask();
    }
    V* v = entries_[i].value;
    free_.reserve(free_.size() + 1);  // before the value goes: nothing throws after
    v->~V();
    free_.push_back(v);
    entries_[i] = Entry{};
    --size_;
    // Shift back the entries after the hole that would not be found past it.
    for (std::size_t j = (i + 1) & mask(); entries_[j].value != nullptr; j = (j + 1) & mask()) {
      const std::size_t ideal = index(entries_[j].key);
      const bool movable = i <= j ? (ideal <= i || ideal > j) : (ideal <= i && ideal > j);
      if (movable) {
        entries_[i] = entries_[j];
        entries_[j] = Entry{};
        i = j;
      }
    }
    return true;
  }

  // f(key, V&) for every entry; f must not insert or erase.
  template <typename F>
  void for_each(F&& f) {
    for (const Entry& e : entries_)
      if (e.value != nullptr) f(e.key, *e.value);
  }
  template <typename F>
  void for_each(F&& f) const {
    for (const Entry& e : entries_)
      if (e.value != nullptr) f(e.key, std::as_const(*e.value));
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  // Bytes of the table and the value blocks (neither shrinks).
  [[nodiscard]] std::size_t capacity_bytes() const noexcept {
    return entries_.capacity() * sizeof(Entry) + slot_bytes_ +
           blocks_.capacity() * sizeof(std::unique_ptr<Slot[]>) + free_.capacity() * sizeof(V*);
  }

 private:
  struct Entry {
    std::uint64_t key = 0;
    V* value = nullptr;  // null: empty
  };
  struct alignas(V) Slot {
    std::byte bytes[sizeof(V)];
  };
  // Block k holds 2^k values, at most 64: a small map wastes little, a
  // large one allocates rarely.
  [[nodiscard]] static constexpr std::size_t block_size(std::size_t k) noexcept {
    return k >= 6 ? 64 : std::size_t{1} << k;
  }

  [[nodiscard]] std::size_t mask() const noexcept { return entries_.size() - 1; }
  [[nodiscard]] std::size_t index(std::uint64_t key) const noexcept {
    return static_cast<std::size_t>(mix64(key)) & mask();
  }
  void place(std::uint64_t key, V* v) noexcept {
    std::size_t i = index(key);
    while (entries_[i].value != nullptr)
      i = (i + 1) & mask();
    entries_[i] = Entry{key, v};
  }
  void grow() {
    std::vector<Entry> old = std::move(entries_);
    const std::size_t n = old.empty() ? 16 : old.size() * 2;
    try {
      entries_.assign(n, Entry{});
    } catch (...) {
      entries_ = std::move(old);
      throw;
    }
    for (const Entry& e : old)
      if (e.value != nullptr) place(e.key, e.value);
  }

  std::vector<Entry> entries_;
  std::vector<std::unique_ptr<Slot[]>> blocks_;
  std::size_t slot_bytes_ = 0;    // of every block
  std::size_t used_in_last_ = 0;  // slots of blocks_.back() ever used
  std::vector<V*> free_;          // slots of erased values
  std::size_t size_ = 0;
};

}  // namespace metrics::history::detail
