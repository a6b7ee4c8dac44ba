// The key store's table (KeyStore, idempotency.hpp): applied and in-flight
// idempotency keys by their 16-byte digest, in a FlatTable (one flat array
// with linear probing: a lookup is one cache miss, an insert allocates
// nothing, erasing leaves no tombstones).
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

#include "metrics/core/flat_table.hpp"

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
    return table_.find(hash_of(key), Same{key});
  }
  [[nodiscard]] const Slot* find(const Digest16& key) const noexcept {
    return table_.find(hash_of(key), Same{key});
  }

  // The slot of `key`, made (zeroed but for the key) when absent.
  std::pair<Slot*, bool> try_emplace(const Digest16& key) {
    return table_.try_emplace(hash_of(key), Same{key},
                              [&](Slot& s) { s = Slot{.key = key, .used = true}; });
  }

  // Removes the slot `s` points at (from find or try_emplace).
  void erase(Slot* s) noexcept { table_.erase(s); }

  [[nodiscard]] std::size_t size() const noexcept { return table_.size(); }
  // Bytes the table holds (its slots, used or not).
  [[nodiscard]] std::size_t capacity_bytes() const noexcept { return table_.capacity_bytes(); }

 private:
  // The digest is already uniform: its first bytes are a hash.
  static std::size_t hash_of(const Digest16& key) noexcept {
    std::uint64_t h = 0;
    std::memcpy(&h, key.data(), sizeof h);
    return static_cast<std::size_t>(h);
  }
  struct Traits {
    static bool used(const Slot& s) noexcept { return s.used; }
    static std::size_t hash(const Slot& s) noexcept { return hash_of(s.key); }
  };
  struct Same {
    const Digest16& key;
    bool operator()(const Slot& s) const noexcept { return s.key == key; }
  };

  core::FlatTable<Slot, Traits> table_;
};

}  // namespace metrics::storage::detail
