#include "metrics/storage/file_repository.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <bit>
#include <csignal>
#include <filesystem>
#include <limits>
#include <thread>

#include "metrics/core/clock.hpp"
#include "metrics/core/errors.hpp"
#include "test_util.hpp"

namespace metrics::storage::testing {
namespace {

namespace fs = std::filesystem;
using core::Metric;
using core::MetricType;
using std::chrono::milliseconds;

constexpr milliseconds kSync{0};
constexpr milliseconds kHour{3'600'000};

std::unique_ptr<FileRepository> open(const fs::path& path, milliseconds interval,
                                     bool restore = true) {
  return std::make_unique<FileRepository>(
      FileOptions{.path = path, .store_interval = interval, .restore = restore});
}

// Copies the storage files as they are on disk now: what a crash at this
// moment would leave behind. The log goes first: a compaction may run in the
// background, and a snapshot copied after the log is never older than it.
void copy_files(const fs::path& from, const fs::path& to) {
  if (fs::exists(FileRepository::log_path(from))) {
    fs::copy_file(FileRepository::log_path(from), FileRepository::log_path(to),
                  fs::copy_options::overwrite_existing);
  }
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
}

const std::vector<Metric> kSample{
    Metric::gauge("Alloc", 0.1 + 0.2),
    Metric::gauge("Neg", -0.0),
    Metric::gauge("Tiny", std::numeric_limits<double>::denorm_min()),
    Metric::counter("PollCount", 42),
    Metric::counter("Alloc", -7),
};

void expect_bit_exact(const std::vector<Metric>& got, std::vector<Metric> want) {
  std::sort(want.begin(), want.end(), core::metric_less);
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].id, want[i].id);
    EXPECT_EQ(got[i].type, want[i].type);
    EXPECT_EQ(got[i].delta, want[i].delta);
    EXPECT_EQ(std::bit_cast<std::uint64_t>(got[i].value),
              std::bit_cast<std::uint64_t>(want[i].value))
        << got[i].id;
  }
}

class FileRepositoryModes : public ::testing::TestWithParam<milliseconds> {
 protected:
  TempDir dir_;
  fs::path path_ = dir_.path() / "db.json";
};

TEST_P(FileRepositoryModes, RestartRestoresEverythingBitExact) {
  {
    auto repo = open(path_, GetParam());
    apply_sync(*repo, kSample);
    repo->close();
  }
  auto repo = open(path_, GetParam());
  expect_bit_exact(list_sync(*repo), kSample);
  EXPECT_EQ(apply_sync(*repo, {Metric::counter("PollCount", 1)}),
            std::vector<Metric>{Metric::counter("PollCount", 43)});
}

TEST_P(FileRepositoryModes, RestoreFalseStartsEmpty) {
  {
    auto repo = open(path_, GetParam());
    apply_sync(*repo, kSample);
  }
  auto repo = open(path_, GetParam(), /*restore=*/false);
  EXPECT_TRUE(list_sync(*repo).empty());
}

TEST_P(FileRepositoryModes, CorruptSnapshotThrowsNamingTheFileAndLeavesItUntouched) {
  const std::string junk = "{\"format\":\"metrics-snapshot\",\"version\":1,\"metrics\":[{\"id\":";
  write_all(path_, junk);
  try {
    auto repo = open(path_, GetParam());
    FAIL() << "opened a corrupt file";
  } catch (const core::Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr(path_.string()));
  }
  EXPECT_EQ(read_all(path_), junk);
  EXPECT_FALSE(fs::exists(FileRepository::log_path(path_)));
}

TEST_P(FileRepositoryModes, UnreadablePathThrows) {
  fs::create_directory(path_);  // a folder where the file should be
  EXPECT_THROW(open(path_, GetParam()), core::Error);
  EXPECT_TRUE(fs::is_directory(path_));
}

TEST_P(FileRepositoryModes, MissingFileAndFolderAreAnEmptyStart) {
  const auto deep = dir_.path() / "a" / "b" / "db.json";
  {
    auto repo = open(deep, GetParam());
    EXPECT_TRUE(list_sync(*repo).empty());
    apply_sync(*repo, {Metric::counter("c", 1)});
  }
  EXPECT_TRUE(fs::exists(deep));
  auto repo = open(deep, GetParam());
  EXPECT_EQ(list_sync(*repo), std::vector<Metric>{Metric::counter("c", 1)});
}

TEST_P(FileRepositoryModes, UnwritablePathFailsWritesNotTheStart) {
  write_all(dir_.path() / "file", "x");
  const auto bad = dir_.path() / "file" / "db.json";  // parent is a regular file
  auto repo = open(bad, GetParam());
  if (GetParam() == kSync) {
    EXPECT_THROW(apply_sync(*repo, {Metric::counter("c", 1)}), core::StorageUnavailable);
    EXPECT_THROW(ping_sync(*repo), core::StorageUnavailable);
    EXPECT_EQ(health_sync(*repo),
              (Health{.ok = false, .reason = "the last write to the storage file failed"}));
    EXPECT_EQ(get_sync(*repo, {MetricType::counter, "c"}), std::nullopt);
  } else {
    apply_sync(*repo, {Metric::counter("c", 1)});
    repo->close();  // logs the failure, does not throw
    EXPECT_THROW(ping_sync(*repo), core::StorageUnavailable);
    EXPECT_EQ(health_sync(*repo),
              (Health{.ok = false, .reason = "the last write to the storage file failed"}));
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, FileRepositoryModes, ::testing::Values(kSync, kHour),
                         [](const ::testing::TestParamInfo<milliseconds>& p) {
                           return p.param == kSync ? std::string("Sync") : std::string("Interval");
                         });

class FileRepositorySync : public ::testing::Test {
 protected:
  TempDir dir_;
  fs::path path_ = dir_.path() / "db.json";
  fs::path crash_ = dir_.path() / "crash.json";
};

TEST_F(FileRepositorySync, AcknowledgedUpdatesAreOnDiskBeforeClose) {
  auto repo = open(path_, kSync);
  apply_sync(*repo, kSample);
  apply_sync(*repo, {Metric::counter("PollCount", 8)});
  copy_files(path_, crash_);  // as if the process died right now
  auto recovered = open(crash_, kSync);
  auto want = kSample;
  want[3].delta = 50;
  expect_bit_exact(list_sync(*recovered), want);
}

// Where the records of a fresh log end: walks the length fields from the
// 16-byte header to the preallocated zeros (docs/STORAGE.md has the layout).
std::size_t records_end(const std::string& log) {
  std::size_t pos = 16;
  while (pos + 16 <= log.size()) {
    std::uint32_t len = 0;
    for (std::size_t i = 0; i < 4; ++i) {
      len |= static_cast<std::uint32_t>(static_cast<unsigned char>(log[pos + i])) << (8 * i);
    }
    if (len == 0) break;
    pos += 16 + len;
  }
  return pos;
}

TEST_F(FileRepositorySync, TornLogTailIsIgnored) {
  auto repo = open(path_, kSync);
  apply_sync(*repo, {Metric::counter("c", 1)});
  apply_sync(*repo, {Metric::counter("c", 1)});
  const auto good_end = records_end(read_all(FileRepository::log_path(path_)));
  apply_sync(*repo, {Metric::counter("c", 1), Metric::gauge("g", 9)});
  copy_files(path_, crash_);
  const auto wal = FileRepository::log_path(crash_);
  {
    // The second half of the last record never reached the disk.
    auto bytes = read_all(wal);
    const auto end = records_end(bytes);
    ASSERT_GT(end, good_end);
    const auto cut = (good_end + end) / 2;
    std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(cut), bytes.end(), '\0');
    write_all(wal, bytes);
    auto recovered = open(crash_, kSync);
    EXPECT_EQ(list_sync(*recovered), std::vector<Metric>{Metric::counter("c", 2)});
  }
  {
    // Garbage after the last record is ignored the same way.
    copy_files(path_, crash_);
    auto bytes = read_all(wal);
    const auto end = records_end(bytes);
    bytes.replace(end, 10, "garbage!!!");
    write_all(wal, bytes);
    auto recovered = open(crash_, kSync);
    EXPECT_EQ(list_sync(*recovered),
              (std::vector<Metric>{Metric::counter("c", 3), Metric::gauge("g", 9)}));
  }
}

TEST_F(FileRepositorySync, LogOfAnotherFormatIsAnErrorAndLeftUntouched) {
  {
    auto repo = open(path_, kSync);
    apply_sync(*repo, {Metric::counter("c", 1)});
    copy_files(path_, crash_);
  }
  const auto wal = FileRepository::log_path(crash_);
  write_all(wal, "this is not a log file at all");
  const auto snapshot = read_all(crash_);
  EXPECT_THROW(open(crash_, kSync), core::Error);
  EXPECT_EQ(read_all(wal), "this is not a log file at all");
  EXPECT_EQ(read_all(crash_), snapshot);
}

TEST_F(FileRepositorySync, CompactionKeepsEverything) {
  auto repo = std::make_unique<FileRepository>(
      FileOptions{.path = path_, .store_interval = kSync, .compact_log_bytes = 200});
  for (int i = 1; i <= 100; ++i) {
    apply_sync(*repo, {Metric::counter("c", 1), Metric::gauge("g", i),
                       Metric::counter("n" + std::to_string(i % 7), i)});
    if (i % 10 == 0) {
      copy_files(path_, crash_);
      auto recovered = open(crash_, kSync);
      EXPECT_EQ(get_sync(*recovered, {MetricType::counter, "c"}), Metric::counter("c", i));
      EXPECT_EQ(get_sync(*recovered, {MetricType::gauge, "g"}), Metric::gauge("g", i));
    }
  }
  repo->close();
  auto reopened = open(path_, kSync);
  EXPECT_EQ(list_sync(*reopened).size(), 9U);
}

TEST_F(FileRepositorySync, StaleLogFromBeforeACompactionIsIgnored) {
  // A crash after the new snapshot was renamed into place but before the log
  // was restarted leaves the old log: it must not be replayed again.
  auto repo = open(path_, kSync);
  apply_sync(*repo, {Metric::counter("c", 5)});
  const auto old_log = read_all(FileRepository::log_path(path_));
  repo->close();  // compacts: c=5 is in the snapshot
  write_all(FileRepository::log_path(path_), old_log);
  auto reopened = open(path_, kSync);
  EXPECT_EQ(list_sync(*reopened), std::vector<Metric>{Metric::counter("c", 5)});
}

TEST_F(FileRepositorySync, GroupMovingACounterAcrossTheWholeRangeIsExact) {
  constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  auto repo = open(path_, kSync);
  apply_sync(*repo, {Metric::counter("c", kMin)});
  // Queued together, so they likely share a group whose total moves by more
  // than int64 can hold.
  std::atomic<int> done{0};
  for (int i = 0; i < 2; ++i) {
    repo->apply({Metric::counter("c", kMax)}, [&done](std::exception_ptr err, std::vector<Metric>) {
      EXPECT_FALSE(err);
      ++done;
    });
  }
  repo->close();
  EXPECT_EQ(done.load(), 2);
  EXPECT_EQ(get_sync(*repo, {MetricType::counter, "c"}), Metric::counter("c", kMax - 1));
  auto reopened = open(path_, kSync);
  EXPECT_EQ(get_sync(*reopened, {MetricType::counter, "c"}), Metric::counter("c", kMax - 1));
}

TEST_F(FileRepositorySync, WriteFailureFailsTheGroupAndDamagesNothing) {
  // A file size limit makes the log's next extension fail with EFBIG, as a
  // full disk would fail it with ENOSPC.
  ::signal(SIGXFSZ, SIG_IGN);
  auto repo = open(path_, kSync);
  apply_sync(*repo, {Metric::counter("c", 1), Metric::gauge("g", 1)});
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit small = old;
  small.rlim_cur = static_cast<rlim_t>(fs::file_size(FileRepository::log_path(path_)));
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::vector<Metric> big;  // larger than the log's preallocated room
  for (int i = 0; i < 5000; ++i) {
    big.push_back(Metric::gauge(std::to_string(i) + std::string(240, 'x'), i));
  }
  big.push_back(Metric::counter("c", 1));
  EXPECT_THROW(apply_sync(*repo, big), core::StorageUnavailable);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
  EXPECT_THROW(ping_sync(*repo), core::StorageUnavailable);
  // Nothing of the failed batch is visible, on disk or in memory.
  EXPECT_EQ(list_sync(*repo),
            (std::vector<Metric>{Metric::counter("c", 1), Metric::gauge("g", 1)}));
  copy_files(path_, crash_);
  {
    auto recovered = open(crash_, kSync);
    EXPECT_EQ(list_sync(*recovered),
              (std::vector<Metric>{Metric::counter("c", 1), Metric::gauge("g", 1)}));
  }
  // The next write starts a fresh snapshot and log, and works.
  EXPECT_EQ(apply_sync(*repo, {Metric::counter("c", 1)}),
            std::vector<Metric>{Metric::counter("c", 2)});
  EXPECT_TRUE(ping_sync(*repo));
  copy_files(path_, crash_);
  auto recovered = open(crash_, kSync);
  EXPECT_EQ(list_sync(*recovered),
            (std::vector<Metric>{Metric::counter("c", 2), Metric::gauge("g", 1)}));
}

TEST_F(FileRepositorySync, SnapshotIsReadableJson) {
  {
    auto repo = open(path_, kSync);
    apply_sync(*repo, {Metric::gauge("Alloc", 1.5), Metric::counter("PollCount", 3)});
  }
  EXPECT_THAT(read_all(path_),
              ::testing::StartsWith(R"({"format":"metrics-snapshot","version":1,)"));
  EXPECT_THAT(read_all(path_),
              ::testing::HasSubstr(R"({"id":"Alloc","type":"gauge","value":1.5})"));
}

TEST_F(FileRepositorySync, FullQueueIsOverloaded) {
  auto repo = std::make_unique<FileRepository>(
      FileOptions{.path = path_, .store_interval = kSync, .max_queue = 1});
  std::atomic<int> ok{0};
  std::atomic<int> overloaded{0};
  std::atomic<int> done{0};
  for (int i = 0; i < 200; ++i) {
    repo->apply({Metric::counter("c", 1)}, [&](std::exception_ptr err, std::vector<Metric>) {
      if (!err) {
        ++ok;
      } else {
        try {
          std::rethrow_exception(err);
        } catch (const core::Overloaded&) {
          ++overloaded;
        } catch (...) {
        }
      }
      ++done;
    });
  }
  repo->close();
  EXPECT_EQ(done.load(), 200);
  EXPECT_GT(overloaded.load(), 0);
  EXPECT_EQ(get_sync(*repo, {MetricType::counter, "c"}), Metric::counter("c", ok.load()));
}

TEST(FileRepositoryInterval, WritesTheSnapshotEveryIntervalOfTheClock) {
  TempDir dir;
  const auto path = dir.path() / "db.json";
  auto clock = std::make_shared<core::ManualClock>();
  constexpr milliseconds kInterval{300'000};  // the default: five minutes
  FileRepository repo({.path = path, .store_interval = kInterval, .clock = clock});
  apply_sync(repo, {Metric::counter("c", 3)});
  // The snapshot thread waits one interval of the clock, not of real time.
  const auto start = clock->steady_now();
  const auto due = clock->await_waiter();
  ASSERT_TRUE(due);
  EXPECT_EQ(*due - start, kInterval);
  clock->advance(kInterval - milliseconds{1});
  std::this_thread::sleep_for(milliseconds{5});
  EXPECT_FALSE(fs::exists(path));
  clock->advance(milliseconds{1});
  // Written once the thread waits for the next interval.
  ASSERT_TRUE(clock->await_waiter(*due));
  const auto copy = dir.path() / "copy.json";
  fs::copy_file(path, copy);
  auto recovered = open(copy, kHour);
  EXPECT_EQ(list_sync(*recovered), std::vector<Metric>{Metric::counter("c", 3)});
  // Nothing changed: the next interval writes nothing.
  fs::remove(path);
  const auto next = clock->await_waiter(*due);
  clock->advance(kInterval);
  ASSERT_TRUE(clock->await_waiter(*next));
  EXPECT_FALSE(fs::exists(path));
  repo.close();
  EXPECT_TRUE(fs::exists(path));  // close() always writes
}

}  // namespace
}  // namespace metrics::storage::testing
