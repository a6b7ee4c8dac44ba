// detail::KeyTable (the key store's flat table) against std::unordered_map:
// random inserts, lookups and erases over keys that crowd a few home slots,
// so runs wrap around the end of the table and erasing shifts them back.
#include "metrics/storage/key_table.hpp"

#include <gtest/gtest.h>

#include <random>
#include <unordered_map>

namespace metrics::storage::detail {
namespace {

struct DigestHash {
  std::size_t operator()(const Digest16& d) const noexcept {
    std::size_t h = 0;
    for (unsigned char c : d)
      h = h * 131 + c;
    return h;
  }
};

// Key n: its first byte (part of the home slot) from a small set, so many
// keys share a home; the rest makes it unique.
Digest16 crowded_key(std::uint32_t n, std::uint32_t homes) {
  Digest16 d{};
  d[0] = static_cast<unsigned char>(n % homes * 61 % 256);  // 61: spread over 0..255
  d[8] = static_cast<unsigned char>(n);
  d[9] = static_cast<unsigned char>(n >> 8U);
  d[10] = static_cast<unsigned char>(n >> 16U);
  return d;
}

TEST(KeyTable, AgreesWithAnUnorderedMapUnderRandomInsertsAndErases) {
  for (const std::uint32_t homes : {1U, 3U, 16U, 256U}) {
    std::mt19937 rng(homes);
    KeyTable table;
    std::unordered_map<Digest16, std::int64_t, DigestHash> model;
    for (int op = 0; op < 20'000; ++op) {
      const auto k = crowded_key(static_cast<std::uint32_t>(rng() % 400), homes);
      switch (rng() % 3) {
        case 0: {
          auto [slot, inserted] = table.try_emplace(k);
          ASSERT_EQ(inserted, model.find(k) == model.end()) << "op " << op;
          slot->received_ms = op;
          model[k] = op;
          break;
        }
        case 1:
          if (auto* s = table.find(k)) {
            ASSERT_TRUE(model.contains(k)) << "op " << op;
            table.erase(s);
            model.erase(k);
          } else {
            ASSERT_FALSE(model.contains(k)) << "op " << op;
          }
          break;
        default: {
          const auto* s = std::as_const(table).find(k);
          const auto it = model.find(k);
          ASSERT_EQ(s != nullptr, it != model.end()) << "op " << op;
          if (s != nullptr) {
            ASSERT_EQ(s->received_ms, it->second);
          }
        }
      }
      ASSERT_EQ(table.size(), model.size());
    }
    // Every key of the model is still found with its value; no other is.
    for (std::uint32_t n = 0; n < 400; ++n) {
      const auto k = crowded_key(n, homes);
      const auto* s = table.find(k);
      const auto it = model.find(k);
      ASSERT_EQ(s != nullptr, it != model.end()) << "key " << n << ", homes " << homes;
      if (s != nullptr) {
        EXPECT_EQ(s->received_ms, it->second);
      }
    }
  }
}

TEST(KeyTable, GrowsAndEmptiesWithoutLosingAKey) {
  KeyTable table;
  EXPECT_EQ(table.find(Digest16{}), nullptr);
  for (std::uint32_t n = 0; n < 10'000; ++n)
    table.try_emplace(crowded_key(n, 1 << 20)).first->received_ms = n;
  EXPECT_EQ(table.size(), 10'000U);
  EXPECT_GE(table.capacity_bytes(), 10'000 * sizeof(KeyTable::Slot) * 10 / 7);
  for (std::uint32_t n = 0; n < 10'000; ++n) {
    auto* s = table.find(crowded_key(n, 1 << 20));
    ASSERT_NE(s, nullptr) << n;
    ASSERT_EQ(s->received_ms, n);
    table.erase(s);
  }
  EXPECT_EQ(table.size(), 0U);
  EXPECT_EQ(table.find(crowded_key(5, 1 << 20)), nullptr);
}

}  // namespace
}  // namespace metrics::storage::detail
