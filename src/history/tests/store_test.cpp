// HistoryStore: appends and range reads, chunk rollover, retention on a
// manual clock, the memory cap, and concurrent ingest with range reads (run
// under the tsan preset for the race check).
#include "metrics/history/store.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace {

using metrics::core::MetricType;
namespace history = metrics::history;
namespace core = metrics::core;

history::SeriesIdentity gauge_id(std::string name) {
  return {MetricType::gauge, std::move(name), core::Labels{}};
}
history::SeriesIdentity counter_id(std::string name) {
  return {MetricType::counter, std::move(name), core::Labels::make({{"job", "agent"}})};
}

std::int64_t now_ms(const core::Clock& clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             clock.system_now().time_since_epoch())
      .count();
}

TEST(HistoryStore, AppendsAndReadsBack) {
  history::HistoryOptions options;
  options.chunk_samples = 120;
  options.retention = std::chrono::milliseconds{0};
  history::HistoryStore store(options);
  const auto g = gauge_id("Alloc");
  const auto c = counter_id("PollCount");
  for (std::int64_t i = 0; i < 500; ++i) {
    ASSERT_TRUE(store.append(1, g, i * 10'000, static_cast<double>(i) * 0.5));
    ASSERT_TRUE(store.append(2, c, i * 10'000, std::int64_t{5} * i));
  }
  const std::vector<history::SeriesRef> refs{2, 1, 77};
  const auto all = store.read_range(refs, 0, 500 * 10'000);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].ref, 2u);
  EXPECT_EQ(*all[0].identity, c);
  ASSERT_EQ(all[0].samples.size(), 500u);
  ASSERT_EQ(all[1].samples.size(), 500u);
  for (std::int64_t i = 0; i < 500; ++i) {
    EXPECT_EQ(all[0].samples[static_cast<std::size_t>(i)].counter(), 5 * i);
    EXPECT_EQ(all[1].samples[static_cast<std::size_t>(i)].gauge(), static_cast<double>(i) * 0.5);
  }
  // A window inside: both ends inclusive, across chunk boundaries.
  const auto part = store.read_range(std::vector<history::SeriesRef>{1}, 1'190'000, 1'210'000);
  ASSERT_EQ(part.size(), 1u);
  ASSERT_EQ(part[0].samples.size(), 3u);
  EXPECT_EQ(part[0].samples.front().t_ms, 1'190'000);
  EXPECT_EQ(part[0].samples.back().t_ms, 1'210'000);
  // 500 samples at 120 a chunk: 4 closed chunks each.
  const auto st = store.stats();
  EXPECT_EQ(st.series, 2u);
  EXPECT_EQ(st.samples, 1000u);
  EXPECT_EQ(st.closed_chunks, 8u);
  EXPECT_GT(st.bytes, st.payload_bytes);
}

// What remote write in compares a request's samples with.
TEST(HistoryStore, LastTimestampIsTheNewestSampleHeld) {
  history::HistoryOptions o;
  o.retention = std::chrono::milliseconds{0};
  o.chunk_samples = 4;  // closed chunks too
  history::HistoryStore store(o);
  EXPECT_FALSE(store.last_timestamp(1));
  for (int i = 1; i <= 9; ++i)
    ASSERT_TRUE(store.append(1, gauge_id("g"), i * 1000, 1.0));
  EXPECT_EQ(store.last_timestamp(1), 9000);
  for (int i = 10; i <= 12; ++i)
    ASSERT_TRUE(store.append(1, gauge_id("g"), i * 1000, 1.0));
  EXPECT_EQ(store.last_timestamp(1), 12000);  // the open chunk was just closed
  EXPECT_FALSE(store.last_timestamp(2));
}

TEST(HistoryStore, RejectsTheWrongKindOfValue) {
  history::HistoryStore store;
  EXPECT_FALSE(store.append(1, gauge_id("g"), 0, std::int64_t{1}));
  EXPECT_TRUE(store.append(1, gauge_id("g"), 0, 1.0));
  EXPECT_FALSE(store.append(1, gauge_id("g"), 1, std::int64_t{1}));
  EXPECT_EQ(store.stats().samples, 1u);
}

TEST(HistoryStore, PredicateReadAndListing) {
  history::HistoryStore store;
  for (history::SeriesRef r = 0; r < 100; ++r)
    store.append(r, gauge_id("s" + std::to_string(r)), 1000, static_cast<double>(r));
  const auto even = store.read_range(
      [](history::SeriesRef ref, const history::SeriesIdentity&) { return ref % 2 == 0; }, 0, 2000);
  EXPECT_EQ(even.size(), 50u);
  for (const auto& s : even) {
    EXPECT_EQ(s.ref % 2, 0u);
    EXPECT_EQ(s.identity->id, "s" + std::to_string(s.ref));
    ASSERT_EQ(s.samples.size(), 1u);
    EXPECT_EQ(s.samples[0].gauge(), static_cast<double>(s.ref));
  }
  EXPECT_EQ(store.series().size(), 100u);
  EXPECT_TRUE(store.read_range([](auto, const auto&) { return true; }, 1001, 5000).empty());
}

// series_in_range lists exactly the series read_range returns, for ranges
// that fall before, after, across and inside chunks (also between two
// samples of one chunk), and decodes a chunk only when the range lies
// strictly inside its time bounds.
TEST(HistoryStore, SeriesInRangeEqualsReadRangeWithoutDecoding) {
  history::HistoryOptions options;
  options.chunk_span = std::chrono::minutes{1};
  history::HistoryStore store(options);
  for (history::SeriesRef r = 0; r < 40; ++r) {
    // Series r has samples every (r % 7 + 1) * 10 s from r * 5 s, in a few
    // chunks; even refs are named "a", odd ones "b".
    const std::int64_t every = static_cast<std::int64_t>(r % 7 + 1) * 10'000;
    for (std::int64_t t = static_cast<std::int64_t>(r) * 5'000; t < 400'000; t += every)
      store.append(r, gauge_id(r % 2 == 0 ? "a" : "b"), t, 1.0);
  }
  const history::HistoryStore::Predicate all = [](auto, const auto&) { return true; };
  const history::HistoryStore::Predicate thirds = [](history::SeriesRef ref, const auto&) {
    return ref % 3 == 0;
  };
  auto refs_of = [](auto&& entries) {
    std::vector<history::SeriesRef> out;
    for (const auto& e : entries)
      out.push_back(e.ref);
    std::sort(out.begin(), out.end());
    return out;
  };
  std::size_t checked = 0;
  for (std::int64_t start = -10'000; start < 420'000; start += 3'333) {
    for (const std::int64_t len : {0, 1, 999, 4'000, 15'000, 61'000, 500'000}) {
      const std::int64_t end = start + len;
      EXPECT_EQ(refs_of(store.series_in_range("", all, start, end)),
                refs_of(store.read_range(all, start, end)))
          << start << ".." << end;
      EXPECT_EQ(refs_of(store.series_in_range("a", thirds, start, end)),
                refs_of(store.read_range_named("a", thirds, start, end)))
          << start << ".." << end;
      ++checked;
    }
  }
  EXPECT_GT(checked, 100u);
  // A range covering every chunk's bounds decides without decoding anything.
  const auto before = store.bounds_decodes();
  EXPECT_EQ(store.series_in_range("", all, -1, 1'000'000).size(), 40u);
  EXPECT_EQ(store.series_in_range("b", nullptr, 0, 400'000).size(), 20u);
  EXPECT_EQ(store.bounds_decodes(), before);
  // A 1 ms range between two samples of one chunk of series 14 (every 10 s
  // from 70 s): inside the chunk's bounds, so decoded, and rightly empty.
  EXPECT_TRUE(
      store
          .series_in_range(
              "a", [](history::SeriesRef ref, const auto&) { return ref == 14; }, 75'000, 75'001)
          .empty());
  EXPECT_GT(store.bounds_decodes(), before);
}

// read_last_named is read_range_named reduced to the newest sample of each
// series (largest time; of equal times the last appended), whether it comes
// off the open chunk's writer or from decoding: random series with small
// chunks, repeated timestamps, time going back, counters and gauges.
TEST(HistoryStore, ReadLastEqualsTheNewestOfReadRange) {
  history::HistoryOptions options;
  options.chunk_samples = 8;
  options.retention = std::chrono::milliseconds{0};
  history::HistoryStore store(options);
  std::mt19937_64 rng(20261203);
  std::vector<history::SeriesIdentity> ids;
  for (int r = 0; r < 60; ++r) {
    const auto labels = core::Labels::make({{"instance", "i" + std::to_string(r)}});
    ids.push_back(
        {r % 3 == 0 ? MetricType::counter : MetricType::gauge, r % 2 ? "a" : "b", labels});
  }
  for (history::SeriesRef r = 0; r < ids.size(); ++r) {
    std::int64_t t = static_cast<std::int64_t>(rng() % 10'000);
    const int n = static_cast<int>(rng() % 40);  // some series in one chunk, some in five
    for (int i = 0; i < n; ++i) {
      const auto step = rng() % 10;
      if (step == 0) {
        // the same time again
      } else if (step == 1) {
        t -= static_cast<std::int64_t>(rng() % 30'000);  // the clock went back
      } else {
        t += static_cast<std::int64_t>(rng() % 20'000);
      }
      if (ids[r].type == MetricType::counter) {
        ASSERT_TRUE(store.append(r, ids[r], t, static_cast<std::int64_t>(rng() % 1000)));
      } else {
        ASSERT_TRUE(store.append(r, ids[r], t, static_cast<double>(rng() % 1000) / 8));
      }
    }
  }
  const history::HistoryStore::Predicate odd_instances = [](history::SeriesRef ref, const auto&) {
    return ref % 5 != 0;
  };
  auto newest_of = [](const std::vector<history::SeriesSamples>& read) {
    std::vector<std::tuple<history::SeriesRef, std::int64_t, std::uint64_t>> out;
    for (const auto& s : read) {
      EXPECT_FALSE(s.samples.empty());
      std::size_t best = 0;
      for (std::size_t i = 1; i < s.samples.size(); ++i)
        if (s.samples[i].t_ms >= s.samples[best].t_ms) best = i;
      out.emplace_back(s.ref, s.samples[best].t_ms, s.samples[best].bits);
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  std::size_t nonempty = 0;
  for (int k = 0; k < 400; ++k) {
    const std::int64_t start = static_cast<std::int64_t>(rng() % 500'000) - 50'000;
    const std::int64_t end =
        k % 4 == 0 ? INT64_MAX : start + static_cast<std::int64_t>(rng() % 300'000);
    for (const std::string name : {"a", "b"}) {
      for (const auto* pred :
           {&odd_instances, static_cast<const history::HistoryStore::Predicate*>(nullptr)}) {
        const history::HistoryStore::Predicate match = pred != nullptr ? *pred : nullptr;
        const auto last = store.read_last_named(name, match, start, end);
        for (const auto& s : last)
          ASSERT_EQ(s.samples.size(), 1u);
        const auto expected = newest_of(store.read_range_named(name, match, start, end));
        ASSERT_EQ(newest_of(last), expected) << name << " " << start << ".." << end;
        if (!expected.empty()) ++nonempty;
      }
    }
  }
  EXPECT_GT(nonempty, 100u);
}

// Reads by name begin the open chunk at its writer's newest checkpoint
// before the range: the same samples as a read by ref (which decodes every
// chunk from its start), for windows that start before, at and after the
// checkpoints, in open chunks of up to 200 samples where the clock now and
// then goes back or repeats a time.
TEST(HistoryStore, ReadsFromACheckpointEqualReadsFromTheStart) {
  history::HistoryOptions options;
  options.chunk_samples = 240;
  options.retention = std::chrono::milliseconds{0};
  history::HistoryStore store(options);
  std::mt19937_64 rng(20261205);
  std::vector<history::SeriesRef> refs;
  std::int64_t latest = 0;
  for (history::SeriesRef r = 0; r < 40; ++r) {
    const auto id = history::SeriesIdentity{r % 2 ? MetricType::counter : MetricType::gauge, "x",
                                            core::Labels::make({{"i", std::to_string(r)}})};
    refs.push_back(r);
    std::int64_t t = 1'000'000;
    const int n = 1 + static_cast<int>(rng() % 200);
    for (int i = 0; i < n; ++i) {
      const auto step = rng() % 20;
      if (step == 0) {
        t -= static_cast<std::int64_t>(rng() % 60'000);  // the clock went back
      } else if (step != 1) {                            // (1: the same time again)
        t += 10'000 + static_cast<std::int64_t>(rng() % 7) - 3;
      }
      latest = std::max(latest, t);
      if (id.type == MetricType::counter) {
        ASSERT_TRUE(store.append(r, id, t, static_cast<std::int64_t>(i) * 7));
      } else {
        ASSERT_TRUE(store.append(r, id, t, static_cast<double>(rng() % 64) / 4));
      }
    }
  }
  auto flat = [](std::vector<history::SeriesSamples> read) {
    std::vector<std::tuple<history::SeriesRef, std::int64_t, std::uint64_t>> out;
    for (const auto& s : read)
      for (const auto& x : s.samples)
        out.emplace_back(s.ref, x.t_ms, x.bits);
    std::sort(out.begin(), out.end());
    return out;
  };
  std::size_t samples = 0;
  for (int k = 0; k < 300; ++k) {
    const std::int64_t start =
        latest - static_cast<std::int64_t>(rng() % 2'100'000) + (k % 3 == 0 ? 0 : 1);
    const std::int64_t end =
        k % 2 == 0 ? INT64_MAX : start + static_cast<std::int64_t>(rng() % 600'000);
    const auto expected = flat(store.read_range(refs, start, end));
    ASSERT_EQ(flat(store.read_range_named("x", nullptr, start, end)), expected)
        << start << ".." << end;
    samples += expected.size();
  }
  EXPECT_GT(samples, 10'000u);
}

TEST(HistoryStore, ChunkSpanClosesAChunk) {
  history::HistoryOptions options;
  options.chunk_span = std::chrono::minutes{1};
  history::HistoryStore store(options);
  for (std::int64_t i = 0; i < 10; ++i)
    store.append(1, gauge_id("g"), i * 30'000, 1.0);
  // 0, 30, 60 s in a chunk; 90 s is past a minute after 0 s, and so on.
  EXPECT_EQ(store.stats().closed_chunks, 3u);
  EXPECT_EQ(store.read_range(std::vector<history::SeriesRef>{1}, 0, 1'000'000)[0].samples.size(),
            10u);
}

TEST(HistoryStore, RetentionDropsOldChunksAndEmptySeries) {
  auto clock = std::make_shared<core::ManualClock>();
  history::HistoryOptions options;
  options.clock = clock;
  options.retention = std::chrono::hours{1};
  options.chunk_samples = 10;
  std::vector<std::string> lines;
  options.log = [&lines](std::string_view line) { lines.emplace_back(line); };
  history::HistoryStore store(options);
  const std::int64_t start = now_ms(*clock);
  // Series 1: 2 h of samples every minute; series 2: one sample at the start.
  for (std::int64_t m = 0; m < 120; ++m)
    store.append(1, gauge_id("a"), start + m * 60'000, static_cast<double>(m));
  store.append(2, gauge_id("b"), start, 1.0);
  clock->advance(std::chrono::minutes{120});
  const auto st = store.maintain();
  // The cutoff is start + 60 min: chunks of minutes 0-9 ... 50-59 go.
  EXPECT_EQ(st.expired_chunks, 6u + 1u);
  EXPECT_EQ(st.expired_samples, 60u + 1u);
  EXPECT_EQ(st.series, 1u);
  EXPECT_EQ(st.samples, 60u);
  const auto left =
      store.read_range(std::vector<history::SeriesRef>{1, 2}, 0, start + 1'000'000'000);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].samples.front().gauge(), 60.0);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("retention dropped 7 chunks"), std::string::npos) << lines[0];
  // Nothing more to drop: no second line.
  store.maintain();
  EXPECT_EQ(lines.size(), 1u);
}

TEST(HistoryStore, MemoryCapEvictsOldestClosedChunksFirst) {
  history::HistoryOptions options;
  options.retention = std::chrono::milliseconds{0};
  options.chunk_samples = 20;
  options.max_bytes = 0;
  std::vector<std::string> lines;
  options.log = [&lines](std::string_view line) { lines.emplace_back(line); };
  // Fill once without a cap to learn the size, then cap at two thirds (the
  // series themselves, the index and the open chunks are about a third).
  std::size_t full = 0;
  {
    history::HistoryStore probe(options);
    for (history::SeriesRef r = 0; r < 10; ++r)
      for (std::int64_t i = 0; i < 200; ++i)
        probe.append(r, gauge_id("g"), i * 1000 + static_cast<std::int64_t>(r),
                     static_cast<double>(i * 37 % 101));
    full = probe.stats().bytes;
  }
  options.max_bytes = full * 2 / 3;
  history::HistoryStore store(options);
  for (history::SeriesRef r = 0; r < 10; ++r)
    for (std::int64_t i = 0; i < 200; ++i)
      store.append(r, gauge_id("g"), i * 1000 + static_cast<std::int64_t>(r),
                   static_cast<double>(i * 37 % 101));
  EXPECT_EQ(store.stats().bytes, full);
  const auto st = store.maintain();
  EXPECT_LE(st.bytes, options.max_bytes);
  EXPECT_GT(st.evicted_chunks, 0u);
  EXPECT_EQ(st.evicted_samples, st.evicted_chunks * 20);
  EXPECT_EQ(st.eviction_passes, 1u);
  EXPECT_EQ(st.samples + st.evicted_samples, 2000u);
  EXPECT_EQ(st.series, 10u);  // the open chunks stay
  // What is left of each series is its newest part: the oldest went first.
  // and evenly across series: the first samples left are within a chunk's
  // span of each other.
  std::int64_t oldest_left = INT64_MAX, newest_first = INT64_MIN;
  for (const auto& s : store.read_range([](auto, const auto&) { return true; }, 0, INT64_MAX)) {
    EXPECT_EQ(s.samples.back().t_ms, 199'000 + static_cast<std::int64_t>(s.ref));
    oldest_left = std::min(oldest_left, s.samples.front().t_ms);
    newest_first = std::max(newest_first, s.samples.front().t_ms);
  }
  EXPECT_GT(oldest_left, 0);
  EXPECT_LE(newest_first - oldest_left, 20'000);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("evicted"), std::string::npos);

  // A cap below the open chunks' size takes them too, oldest first.
  history::HistoryOptions tiny = options;
  tiny.max_bytes = 1;
  history::HistoryStore small(tiny);
  small.append(1, gauge_id("a"), 5, 1.0);
  small.append(2, gauge_id("b"), 6, 1.0);
  const auto st2 = small.maintain();
  EXPECT_EQ(st2.series, 0u);
  EXPECT_EQ(st2.samples, 0u);
  // What is left is the shards' index, which keeps its slots for reuse.
  EXPECT_LT(st2.bytes, 2048u);
  EXPECT_EQ(st2.evicted_samples, 2u);
}

// Writers append to their own series while readers read ranges over all of
// them; every read must see, for each series, a prefix of what was written.
TEST(HistoryStore, ConcurrentIngestAndRangeReads) {
  history::HistoryOptions options;
  options.chunk_samples = 16;
  options.shards = 8;
  options.max_bytes = 0;
  options.retention = std::chrono::milliseconds{0};  // the samples are from 1970
  history::HistoryStore store(options);
  constexpr int kWriters = 3;
  constexpr int kSeriesPerWriter = 20;
  constexpr std::int64_t kSamples = 400;
  std::atomic<int> writers_done{0};
  std::atomic<bool> bad{false};

  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w)
    threads.emplace_back([&, w] {
      for (std::int64_t i = 0; i < kSamples; ++i)
        for (int k = 0; k < kSeriesPerWriter; ++k) {
          const auto ref = static_cast<history::SeriesRef>(w * kSeriesPerWriter + k);
          store.append(ref, counter_id("c" + std::to_string(ref)), i * 10, i * 3);
        }
      writers_done.fetch_add(1);
    });
  std::atomic<std::size_t> reads{0};
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&] {
      do {
        const auto all = store.read_range([](auto, const auto&) { return true; }, 0, INT64_MAX);
        for (const auto& s : all)
          for (std::size_t i = 0; i < s.samples.size(); ++i)
            if (s.samples[i].t_ms != static_cast<std::int64_t>(i) * 10 ||
                s.samples[i].counter() != static_cast<std::int64_t>(i) * 3)
              bad = true;
        (void)store.series();
        (void)store.stats();
        reads.fetch_add(1);
      } while (writers_done.load() < kWriters);
    });
  threads.emplace_back([&] {
    while (writers_done.load() < kWriters)
      store.maintain();
  });
  for (auto& t : threads)
    t.join();
  EXPECT_FALSE(bad.load());
  EXPECT_GT(reads.load(), 0u);
  const auto st = store.stats();
  EXPECT_EQ(st.samples, static_cast<std::size_t>(kWriters * kSeriesPerWriter * kSamples));
  const auto all = store.read_range([](auto, const auto&) { return true; }, 0, INT64_MAX);
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kWriters * kSeriesPerWriter));
}

// append_batch(items, unknown) names, in item order, the items of refs the
// store does not hold that came without an identity (over more shards than
// one lock window), and stores the rest.
TEST(HistoryStore, AppendBatchNamesUnknownRefsWithoutIdentity) {
  history::HistoryOptions options;
  options.retention = std::chrono::milliseconds{0};
  history::HistoryStore store(options);
  const auto known = gauge_id("known");
  ASSERT_TRUE(store.append(1, known, 1'000, 1.0));
  std::vector<history::AppendItem> items;
  for (std::uint64_t ref = 100; ref < 140; ++ref)
    items.push_back({.ref = ref, .t_ms = 2'000, .bits = history::gauge_bits(2.0)});
  items.push_back({.ref = 1, .t_ms = 2'000, .bits = history::gauge_bits(3.0)});
  // Counter bits for a gauge series: refused, not unknown.
  items.push_back({.ref = 1,
                   .t_ms = 3'000,
                   .bits = history::counter_bits(4),
                   .kind = MetricType::counter,
                   .identity = &known});
  std::vector<std::uint32_t> unknown{7};  // appended to, not replaced
  EXPECT_EQ(store.append_batch(items, unknown), 1U);
  std::vector<std::uint32_t> want{7};
  for (std::uint32_t i = 0; i < 40; ++i)
    want.push_back(i);
  EXPECT_EQ(unknown, want);
  EXPECT_EQ(store.stats().series, 1U);
  const std::vector<history::SeriesRef> refs{1};
  const auto got = store.read_range(refs, 0, 10'000);
  ASSERT_EQ(got.size(), 1U);
  ASSERT_EQ(got[0].samples.size(), 2U);
  EXPECT_EQ(got[0].samples[1].gauge(), 3.0);
}

// append_batch() stores exactly what append() one by one stores: the same
// samples, the same refusals, the same accounting; batches span more shards
// than one lock window, make series, repeat a series and mix in wrong kinds.
TEST(HistoryStore, AppendBatchEqualsAppendOneByOne) {
  history::HistoryOptions options;
  options.chunk_samples = 24;
  options.shards = 64;
  options.retention = std::chrono::milliseconds{0};
  history::HistoryStore one(options);
  history::HistoryStore batched(options);
  std::vector<history::SeriesIdentity> ids;
  for (int k = 0; k < 150; ++k)
    ids.push_back(k % 3 == 0 ? counter_id("c" + std::to_string(k))
                             : gauge_id("g" + std::to_string(k)));
  std::uint64_t rng = 12345;
  const auto next = [&rng] {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return rng >> 33;
  };
  std::size_t stored_one = 0;
  std::size_t stored_batched = 0;
  for (std::int64_t round = 0; round < 60; ++round) {
    std::vector<history::AppendItem> items;
    const std::size_t n = 1 + next() % 120;
    for (std::size_t j = 0; j < n; ++j) {
      const auto k = static_cast<std::size_t>(next() % ids.size());
      const auto& id = ids[k];
      // One item in 16 has the wrong kind for its series.
      const bool wrong = next() % 16 == 0;
      const auto kind =
          wrong ? (id.type == MetricType::counter ? MetricType::gauge : MetricType::counter)
                : id.type;
      const std::uint64_t bits = kind == MetricType::counter
                                     ? history::counter_bits(static_cast<std::int64_t>(next()))
                                     : history::gauge_bits(static_cast<double>(next()) / 7.0);
      items.push_back({.ref = k,
                       .t_ms = round * 10'000 + static_cast<std::int64_t>(j),
                       .bits = bits,
                       .kind = kind,
                       .identity = &id});
    }
    for (const auto& it : items) {
      const bool ok =
          it.kind == MetricType::counter
              ? one.append(it.ref, *it.identity, it.t_ms, history::counter_value(it.bits))
              : one.append(it.ref, *it.identity, it.t_ms, history::gauge_value(it.bits));
      stored_one += ok ? 1 : 0;
    }
    stored_batched += batched.append_batch(items);
  }
  EXPECT_EQ(stored_one, stored_batched);
  const auto all_one = one.read_range([](auto, const auto&) { return true; }, 0, INT64_MAX);
  auto all_batched = batched.read_range([](auto, const auto&) { return true; }, 0, INT64_MAX);
  ASSERT_EQ(all_one.size(), all_batched.size());
  for (const auto& a : all_one) {
    const auto b = std::find_if(all_batched.begin(), all_batched.end(),
                                [&](const auto& x) { return x.ref == a.ref; });
    ASSERT_NE(b, all_batched.end()) << a.ref;
    EXPECT_EQ(*a.identity, *b->identity);
    ASSERT_EQ(a.samples.size(), b->samples.size()) << a.ref;
    for (std::size_t i = 0; i < a.samples.size(); ++i) {
      EXPECT_EQ(a.samples[i].t_ms, b->samples[i].t_ms);
      EXPECT_EQ(a.samples[i].bits, b->samples[i].bits);
    }
  }
  const auto sa = one.stats();
  const auto sb = batched.stats();
  EXPECT_EQ(sa.samples, sb.samples);
  EXPECT_EQ(sa.series, sb.series);
  EXPECT_EQ(sa.bytes, sb.bytes);
  EXPECT_EQ(sa.payload_bytes, sb.payload_bytes);
  EXPECT_EQ(sa.closed_chunks, sb.closed_chunks);
}

// Batches from several threads over the same shards (each locks a window of
// shards at once), with range reads and maintenance running: no deadlock,
// no lost sample (under the tsan preset, no race).
TEST(HistoryStore, ConcurrentBatchesAndRangeReads) {
  history::HistoryOptions options;
  options.chunk_samples = 16;
  options.shards = 64;
  options.max_bytes = 0;
  options.retention = std::chrono::milliseconds{0};
  history::HistoryStore store(options);
  constexpr int kWriters = 3;
  constexpr int kSeriesPerWriter = 40;
  constexpr std::int64_t kSamples = 200;
  std::vector<history::SeriesIdentity> ids;
  for (int k = 0; k < kWriters * kSeriesPerWriter; ++k)
    ids.push_back(counter_id("c" + std::to_string(k)));
  std::atomic<int> writers_done{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w)
    threads.emplace_back([&, w] {
      std::vector<history::AppendItem> items;
      for (std::int64_t i = 0; i < kSamples; ++i) {
        items.clear();
        for (int k = 0; k < kSeriesPerWriter; ++k) {
          const auto ref = static_cast<history::SeriesRef>(w * kSeriesPerWriter + k);
          items.push_back({.ref = ref,
                           .t_ms = i * 10,
                           .bits = history::counter_bits(i * 3),
                           .kind = MetricType::counter,
                           .identity = &ids[ref]});
        }
        store.append_batch(items);
      }
      writers_done.fetch_add(1);
    });
  std::atomic<bool> bad{false};
  threads.emplace_back([&] {
    do {
      for (const auto& s : store.read_range([](auto, const auto&) { return true; }, 0, INT64_MAX))
        for (std::size_t i = 0; i < s.samples.size(); ++i)
          if (s.samples[i].counter() != static_cast<std::int64_t>(i) * 3) bad = true;
      store.maintain();
    } while (writers_done.load() < kWriters);
  });
  for (auto& t : threads)
    t.join();
  EXPECT_FALSE(bad.load());
  EXPECT_EQ(store.stats().samples,
            static_cast<std::size_t>(kWriters * kSeriesPerWriter * kSamples));
}

}  // namespace
