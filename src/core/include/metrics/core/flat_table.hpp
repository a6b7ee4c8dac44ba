// A hash table in one flat array: open addressing, linear probing, and
// backward-shift erase (no tombstones, so a long-lived table does not slow
// down). A lookup is one cache miss (the home slot and its neighbours on
// the same lines) where a node-based map takes the bucket, then the node;
// an insert allocates nothing but the occasional doubling.
//
// The slot type holds its key, its value and its hash; Traits says which
// slots are in use and what their hash is:
//
//   struct Traits {
//     static bool used(const Slot&) noexcept;
//     static std::size_t hash(const Slot&) noexcept;  // of a used slot
//   };
//
// A default-constructed Slot is unused. Lookups take the hash and a
// predicate on the slot, so a key can be probed in any form (a view, a
// digest) without building one:
//
//   FlatTable<Slot, Traits> t;
//   auto [slot, inserted] = t.try_emplace(h, same_key, [&](Slot& s) { s = ...; });
//   if (Slot* s = t.find(h, same_key)) t.erase(s);
//
// A pointer into the table is valid until the next try_emplace, reserve or
// erase. Not thread-safe (its owner's lock guards it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

namespace metrics::core {

template <class Slot, class Traits>
class FlatTable {
  static_assert(std::is_nothrow_move_assignable_v<Slot>);

 public:
  // The slot whose hash is `hash` and for which same(slot) holds, or nullptr.
  template <class Same>
  [[nodiscard]] Slot* find(std::size_t hash, Same&& same) noexcept {
    const std::size_t i = index_of(hash, same);
    return i == kNone ? nullptr : &slots_[i];
  }
  template <class Same>
  [[nodiscard]] const Slot* find(std::size_t hash, Same&& same) const noexcept {
    const std::size_t i = index_of(hash, same);
    return i == kNone ? nullptr : &slots_[i];
  }

  // The slot of the key, or a new one that make(slot) fills (it must make
  // the slot used, with this hash). When make throws, nothing is inserted.
  template <class Same, class Make>
  std::pair<Slot*, bool> try_emplace(std::size_t hash, Same&& same, Make&& make) {
    if ((size_ + 1) * 4 > slots_.size() * 3) grow(slots_.empty() ? kMinSlots : slots_.size() * 2);
    for (std::size_t i = home(hash);; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (!Traits::used(s)) {
        make(s);
        ++size_;
        return {&s, true};
      }
      if (Traits::hash(s) == hash && same(std::as_const(s))) return {&s, false};
    }
  }

  // Removes the slot `s` points at (from find or try_emplace).
  void erase(Slot* s) noexcept {
    auto i = static_cast<std::size_t>(s - slots_.data());
    // Backward shift: move every later slot of the run whose home is not
    // in (i, j] into the hole, so that no lookup stops early.
    for (std::size_t j = i;;) {
      for (;;) {
        j = (j + 1) & mask_;
        if (!Traits::used(slots_[j])) {
          slots_[i] = Slot{};
          --size_;
          return;
        }
        const std::size_t k = home(Traits::hash(slots_[j]));
        const bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) break;
      }
      slots_[i] = std::move(slots_[j]);
      i = j;
    }
  }

  // Starts loading the home slot of `hash`: a batch that prefetches all its
  // keys before it looks them up waits for their misses at once.
  void prefetch(std::size_t hash) const noexcept {
    if (!slots_.empty()) __builtin_prefetch(&slots_[home(hash)]);
  }

  // Room for `n` slots in use without growing.
  void reserve(std::size_t n) {
    std::size_t want = kMinSlots;
    while (n * 4 > want * 3)
      want *= 2;
    if (want > slots_.size()) grow(want);
  }

  // Calls f(slot) for every slot in use (do not insert or erase meanwhile).
  template <class F>
  void for_each(F&& f) {
    for (Slot& s : slots_)
      if (Traits::used(s)) f(s);
  }
  template <class F>
  void for_each(F&& f) const {
    for (const Slot& s : slots_)
      if (Traits::used(s)) f(s);
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  // Bytes the table holds (its slots, used or not).
  [[nodiscard]] std::size_t capacity_bytes() const noexcept {
    return slots_.capacity() * sizeof(Slot);
  }
  void swap(FlatTable& other) noexcept {
    slots_.swap(other.slots_);
    std::swap(mask_, other.mask_);
    std::swap(shift_, other.shift_);
    std::swap(size_, other.size_);
  }

 private:
  static constexpr std::size_t kNone = ~std::size_t{0};
  static constexpr std::size_t kMinSlots = 16;

  template <class Same>
  [[nodiscard]] std::size_t index_of(std::size_t hash, Same& same) const noexcept {
    if (size_ == 0) return kNone;
    for (std::size_t i = home(hash);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (!Traits::used(s)) return kNone;
      if (Traits::hash(s) == hash && same(s)) return i;
    }
  }

  // Fibonacci hashing: the top bits of hash * 2^64/phi, so that a hash
  // whose low bits are poor still spreads over the table.
  [[nodiscard]] std::size_t home(std::size_t hash) const noexcept {
    return static_cast<std::size_t>((static_cast<std::uint64_t>(hash) * 0x9e3779b97f4a7c15ULL) >>
                                    shift_);
  }

  // n: a power of two. Strong guarantee: the only allocation comes first.
  void grow(std::size_t n) {
    std::vector<Slot> fresh(n);
    unsigned shift = 64;
    for (std::size_t m = n; m > 1; m >>= 1U)
      --shift;
    slots_.swap(fresh);
    mask_ = n - 1;
    shift_ = shift;
    for (Slot& s : fresh) {
      if (!Traits::used(s)) continue;
      std::size_t i = home(Traits::hash(s));
      while (Traits::used(slots_[i]))
        i = (i + 1) & mask_;
      slots_[i] = std::move(s);
    }
  }

  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  unsigned shift_ = 64;
  std::size_t size_ = 0;
};

}  // namespace metrics::core
