// The key store's table (KeyStore, idempotency.hpp): applied and in-flight
// idempotency keys by their 16-byte digest, in one flat array with linear
// probing. A lookup is one cache miss (the slot, its neighbours on the same
// lines) where a node-based map took the bucket and then the node, and an
// insert allocates nothing. Erasing shifts the following slots of the run
// back (no tombstones), so a long-lived store does not slow down.
//
//   detail::KeyTable t;
//   auto [slot, inserted] = t.try_emplace(digest);   // slot->fingerprint = ...
//   if (auto* s = t.find(digest)) t.erase(s);
//
// A pointer into the table is valid until the next try_emplace or erase.
// Not thread-safe (the KeyStore's mutex guards it).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

namespace metrics::storage::detail {

using Digest16 = std::array<unsigned char, 16>;

class KeyTable {
 public:
  struct Slot {
    Digest16 key{};
    Digest16 fingerprint{};
    std::int64_t received_ms = 0;
    bool in_flight = false;
    bool used = false;
  };

  // The slot of `key`, or nullptr.
  [[nodiscard]] Slot* find(const Digest16& key) noexcept {
    const std::size_t i = index_of(key);
    return i == kNone ? nullptr : &slots_[i];
  }
  [[nodiscard]] const Slot* find(const Digest16& key) const noexcept {
    const std::size_t i = index_of(key);
    return i == kNone ? nullptr : &slots_[i];
  }

  // The slot of `key`, made (zeroed but for the key) when absent.
  std::pair<Slot*, bool> try_emplace(const Digest16& key) {
    if ((size_ + 1) * 10 > slots_.size() * 7) grow();
    for (std::size_t i = home(key);; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (!s.used) {
        s = Slot{.key = key, .used = true};
        ++size_;
        return {&s, true};
      }
      if (s.key == key) return {&s, false};
    }
  }

  // Removes the slot `s` points at (from find or try_emplace).
  void erase(Slot* s) noexcept {
    auto i = static_cast<std::size_t>(s - slots_.data());
    // Backward shift: move every later slot of the run whose home is not
    // in (i, j] into the hole, so that no lookup stops early.
    for (std::size_t j = i;;) {
      slots_[i].used = false;
      for (;;) {
        j = (j + 1) & mask_;
        if (!slots_[j].used) {
          --size_;
          return;
        }
        const std::size_t k = home(slots_[j].key);
        const bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) break;
      }
      slots_[i] = slots_[j];
      i = j;
    }
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  // Bytes the table holds (its slots, used or not).
  [[nodiscard]] std::size_t capacity_bytes() const noexcept {
    return slots_.capacity() * sizeof(Slot);
  }

 private:
  static constexpr std::size_t kNone = ~std::size_t{0};

  [[nodiscard]] std::size_t index_of(const Digest16& key) const noexcept {
    if (size_ == 0) return kNone;
    for (std::size_t i = home(key);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (!s.used) return kNone;
      if (s.key == key) return i;
    }
  }

  // The digest is already uniform: its first bytes are a hash.
  [[nodiscard]] std::size_t home(const Digest16& key) const noexcept {
    std::uint64_t h = 0;
    std::memcpy(&h, key.data(), sizeof h);
    return static_cast<std::size_t>(h) & mask_;
  }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    const std::size_t n = old.empty() ? 64 : old.size() * 2;
    slots_.assign(n, Slot{});
    mask_ = n - 1;
    for (const Slot& s : old) {
      if (!s.used) continue;
      std::size_t i = home(s.key);
      while (slots_[i].used)
        i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace metrics::storage::detail
