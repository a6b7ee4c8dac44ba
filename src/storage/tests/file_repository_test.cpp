#include "metrics/storage/file_repository.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <bit>
#include <csignal>
#include <filesystem>
#include <limits>
#include <thread>
#include <vector>

#include "metrics/core/clock.hpp"
#include "metrics/core/errors.hpp"
#include "old_file_format.hpp"
#include "test_util.hpp"

namespace metrics::storage::testing {
namespace {

namespace fs = std::filesystem;
using core::Labels;
using core::MetricType;
using core::Point;
using core::SeriesKey;
using core::Update;
namespace old_format = testing::old_format;
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

const std::vector<Update> kSample{
    Update::gauge("Alloc", 0.1 + 0.2),
    Update::gauge("Neg", -0.0),
    Update::gauge("Tiny", std::numeric_limits<double>::denorm_min()),
    Update::counter("PollCount", 42),
    Update::counter("Alloc", -7),
};

Labels inst(std::string_view name) {
  return Labels::make({{"instance", std::string(name)}});
}

Point at(Point p, std::int64_t ms) {
  p.timestamp_ms = ms;
  return p;
}

// What a fresh storage holds after one batch of distinct series: as classic
// values (ms 0) or as series (the batch's time).
std::vector<Point> as_points(const std::vector<Update>& batch, std::int64_t ms = 0) {
  std::vector<Point> out;
  for (const auto& u : batch)
    out.push_back(Point{u.id, u.type, u.labels, u.delta, u.value, ms});
  return out;
}

void expect_bit_exact(const std::vector<Point>& got, std::vector<Point> want) {
  std::sort(want.begin(), want.end(), core::point_less);
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].id, want[i].id);
    EXPECT_EQ(got[i].type, want[i].type);
    EXPECT_EQ(got[i].labels, want[i].labels);
    EXPECT_EQ(got[i].total, want[i].total);
    EXPECT_EQ(got[i].timestamp_ms, want[i].timestamp_ms);
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
    apply_sync(*repo, kSample, 1000);
    repo->close();
  }
  auto repo = open(path_, GetParam());
  expect_bit_exact(list_sync(*repo), as_points(kSample));
  expect_bit_exact(list_series_sync(*repo), as_points(kSample, 1000));
  EXPECT_EQ(apply_sync(*repo, {Update::counter("PollCount", 1)}).classic,
            std::vector<Point>{Point::counter("PollCount", 43)});
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
    apply_sync(*repo, {Update::counter("c", 1)});
  }
  EXPECT_TRUE(fs::exists(deep));
  auto repo = open(deep, GetParam());
  EXPECT_EQ(list_sync(*repo), std::vector<Point>{Point::counter("c", 1)});
}

TEST_P(FileRepositoryModes, UnwritablePathFailsWritesNotTheStart) {
  write_all(dir_.path() / "file", "x");
  const auto bad = dir_.path() / "file" / "db.json";  // parent is a regular file
  auto repo = open(bad, GetParam());
  if (GetParam() == kSync) {
    EXPECT_THROW(apply_sync(*repo, {Update::counter("c", 1)}), core::StorageUnavailable);
    EXPECT_THROW(ping_sync(*repo), core::StorageUnavailable);
    EXPECT_EQ(health_sync(*repo),
              (Health{.ok = false, .reason = "the last write to the storage file failed"}));
    EXPECT_EQ(get_classic_sync(*repo, {MetricType::counter, "c"}), std::nullopt);
    EXPECT_EQ(get_sync(*repo, {MetricType::counter, "c", {}}), std::nullopt);
  } else {
    apply_sync(*repo, {Update::counter("c", 1)});
    repo->close();  // logs the failure, does not throw
    EXPECT_THROW(ping_sync(*repo), core::StorageUnavailable);
    EXPECT_EQ(health_sync(*repo),
              (Health{.ok = false, .reason = "the last write to the storage file failed"}));
  }
}

TEST_P(FileRepositoryModes, RestartRestoresSeriesWithLabelsAndTimesAndClassicValues) {
  const Labels odd = Labels::make({{"instance", "h:1"}, {"v", "quote\" \xc3\xa9 {}=,"}});
  std::vector<Point> series;
  std::vector<Point> classic;
  {
    auto repo = open(path_, GetParam());
    apply_sync(*repo,
               {Update::counter("c", 5, inst("a")), Update::counter("c", 7, odd),
                Update::counter("c", 1), Update::gauge("g", 2.5, inst("a"))},
               1000);
    apply_sync(*repo, {Update::counter("c", 1, inst("a")), Update::gauge("g", -0.0)}, 2000);
    EXPECT_EQ(expire_sync(*repo, 1500).size(), 3U);      // c{}, c{odd}, g{a}
    apply_sync(*repo, {Update::counter("c", 2)}, 3000);  // fresh after expiry
    series = list_series_sync(*repo);
    classic = list_sync(*repo);
    repo->close();
  }
  EXPECT_EQ(series, (std::vector<Point>{at(Point::counter("c", 2), 3000),
                                        at(Point::counter("c", 6, inst("a")), 2000),
                                        at(Point::gauge("g", -0.0), 2000)}));
  EXPECT_EQ(classic, (std::vector<Point>{Point::counter("c", 16), Point::gauge("g", -0.0)}));
  auto repo = open(path_, GetParam());
  expect_bit_exact(list_series_sync(*repo), series);
  expect_bit_exact(list_sync(*repo), classic);
  // Restored series go on counting from their totals.
  const auto a = apply_sync(*repo, {Update::counter("c", 1, inst("a"))}, 4000);
  EXPECT_EQ(a.series, std::vector<Point>{at(Point::counter("c", 7, inst("a")), 4000)});
  EXPECT_EQ(a.classic, std::vector<Point>{Point::counter("c", 17)});
}

// Version 1 files (before series) as the previous program left them: the
// values become classic values and the unlabelled series, of time 0.
TEST_P(FileRepositoryModes, Version1SnapshotLoads) {
  write_all(path_, R"({"format":"metrics-snapshot","version":1,"metrics":[
{"id":"Alloc","type":"gauge","value":1.5},
{"id":"PollCount","type":"counter","delta":3}
]}
)");
  auto repo = open(path_, GetParam());
  EXPECT_EQ(list_sync(*repo),
            (std::vector<Point>{Point::gauge("Alloc", 1.5), Point::counter("PollCount", 3)}));
  EXPECT_EQ(list_series_sync(*repo),
            (std::vector<Point>{Point::gauge("Alloc", 1.5), Point::counter("PollCount", 3)}));
  // Of unknown time: any expiry takes them, their classic values stay.
  EXPECT_EQ(expire_sync(*repo, 1).size(), 2U);
  EXPECT_EQ(list_sync(*repo).size(), 2U);
  repo->close();
  auto reopened = open(path_, GetParam());
  EXPECT_TRUE(list_series_sync(*reopened).empty());
  EXPECT_EQ(list_sync(*reopened).size(), 2U);
  EXPECT_THAT(read_all(path_), ::testing::HasSubstr(R"("version":2,)"));
}

TEST_P(FileRepositoryModes, GoServersBareArrayLoads) {
  write_all(path_, R"([{"id":"Alloc","type":"gauge","value":1.5}])");
  auto repo = open(path_, GetParam());
  EXPECT_EQ(get_classic_sync(*repo, {MetricType::gauge, "Alloc"}), Point::gauge("Alloc", 1.5));
  EXPECT_EQ(get_sync(*repo, {MetricType::gauge, "Alloc", {}}), Point::gauge("Alloc", 1.5));
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
  apply_sync(*repo, {Update::counter("PollCount", 8)});
  copy_files(path_, crash_);  // as if the process died right now
  auto recovered = open(crash_, kSync);
  auto want = as_points(kSample);
  want[3].total = 50;
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
  apply_sync(*repo, {Update::counter("c", 1)});
  apply_sync(*repo, {Update::counter("c", 1)});
  const auto good_end = records_end(read_all(FileRepository::log_path(path_)));
  apply_sync(*repo, {Update::counter("c", 1), Update::gauge("g", 9)});
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
    EXPECT_EQ(list_sync(*recovered), std::vector<Point>{Point::counter("c", 2)});
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
              (std::vector<Point>{Point::counter("c", 3), Point::gauge("g", 9)}));
  }
}

TEST_F(FileRepositorySync, LogOfAnotherFormatIsAnErrorAndLeftUntouched) {
  {
    auto repo = open(path_, kSync);
    apply_sync(*repo, {Update::counter("c", 1)});
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
    apply_sync(*repo,
               {Update::counter("c", 1, inst("a")), Update::gauge("g", i),
                Update::counter("n" + std::to_string(i % 7), i)},
               i);
    if (i % 10 == 0) {
      copy_files(path_, crash_);
      auto recovered = open(crash_, kSync);
      EXPECT_EQ(get_classic_sync(*recovered, {MetricType::counter, "c"}), Point::counter("c", i));
      EXPECT_EQ(get_classic_sync(*recovered, {MetricType::gauge, "g"}), Point::gauge("g", i));
      EXPECT_EQ(get_sync(*recovered, {MetricType::counter, "c", inst("a")}),
                at(Point::counter("c", i, inst("a")), i));
    }
  }
  repo->close();
  auto reopened = open(path_, kSync);
  EXPECT_EQ(list_sync(*reopened).size(), 9U);
  EXPECT_EQ(list_series_sync(*reopened).size(), 9U);
}

TEST_F(FileRepositorySync, StaleLogFromBeforeACompactionIsIgnored) {
  // A crash after the new snapshot was renamed into place but before the log
  // was restarted leaves the old log: it must not be replayed again.
  auto repo = open(path_, kSync);
  apply_sync(*repo, {Update::counter("c", 5)});
  const auto old_log = read_all(FileRepository::log_path(path_));
  repo->close();  // compacts: c=5 is in the snapshot
  write_all(FileRepository::log_path(path_), old_log);
  auto reopened = open(path_, kSync);
  EXPECT_EQ(list_sync(*reopened), std::vector<Point>{Point::counter("c", 5)});
}

TEST_F(FileRepositorySync, GroupMovingACounterAcrossTheWholeRangeIsExact) {
  constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  auto repo = open(path_, kSync);
  apply_sync(*repo, {Update::counter("c", kMin)});
  // Queued together, so they likely share a group whose total moves by more
  // than int64 can hold.
  std::atomic<int> done{0};
  for (int i = 0; i < 2; ++i) {
    repo->apply({Update::counter("c", kMax)}, 1, [&done](std::exception_ptr err, Applied) {
      EXPECT_FALSE(err);
      ++done;
    });
  }
  repo->close();
  EXPECT_EQ(done.load(), 2);
  EXPECT_EQ(get_classic_sync(*repo, {MetricType::counter, "c"}), Point::counter("c", kMax - 1));
  auto reopened = open(path_, kSync);
  EXPECT_EQ(get_classic_sync(*reopened, {MetricType::counter, "c"}), Point::counter("c", kMax - 1));
  EXPECT_EQ(get_sync(*reopened, {MetricType::counter, "c", {}}),
            at(Point::counter("c", kMax - 1), 1));
}

TEST_F(FileRepositorySync, WriteFailureFailsTheGroupAndDamagesNothing) {
  // A file size limit makes the log's next extension fail with EFBIG, as a
  // full disk would fail it with ENOSPC.
  ::signal(SIGXFSZ, SIG_IGN);
  auto repo = open(path_, kSync);
  apply_sync(*repo, {Update::counter("c", 1), Update::gauge("g", 1)});
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit small = old;
  small.rlim_cur = static_cast<rlim_t>(fs::file_size(FileRepository::log_path(path_)));
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::vector<Update> big;  // larger than the log's preallocated room
  for (int i = 0; i < 5000; ++i) {
    big.push_back(Update::gauge(std::to_string(i) + std::string(240, 'x'), i));
  }
  big.push_back(Update::counter("c", 1));
  EXPECT_THROW(apply_sync(*repo, big), core::StorageUnavailable);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
  EXPECT_THROW(ping_sync(*repo), core::StorageUnavailable);
  // Nothing of the failed batch is visible, on disk or in memory.
  EXPECT_EQ(list_sync(*repo), (std::vector<Point>{Point::counter("c", 1), Point::gauge("g", 1)}));
  copy_files(path_, crash_);
  {
    auto recovered = open(crash_, kSync);
    EXPECT_EQ(list_sync(*recovered),
              (std::vector<Point>{Point::counter("c", 1), Point::gauge("g", 1)}));
  }
  // The next write starts a fresh snapshot and log, and works.
  EXPECT_EQ(apply_sync(*repo, {Update::counter("c", 1)}).classic,
            std::vector<Point>{Point::counter("c", 2)});
  EXPECT_TRUE(ping_sync(*repo));
  copy_files(path_, crash_);
  auto recovered = open(crash_, kSync);
  EXPECT_EQ(list_sync(*recovered),
            (std::vector<Point>{Point::counter("c", 2), Point::gauge("g", 1)}));
}

TEST_F(FileRepositorySync, Version1SnapshotAndLogReplay) {
  // A synchronous-mode run of the previous program, stopped by a crash: its
  // snapshot names its log, whose records continue it.
  write_all(
      path_,
      R"({"format":"metrics-snapshot","version":1,"log_id":"00000000000000ab","seq":1,"metrics":[
{"id":"c","type":"counter","delta":5}
]}
)");
  std::string log = old_format::log_header(0xab);
  old_format::append_record(log, 0xab, 1, {Point::counter("c", 5)});  // already in the snapshot
  old_format::append_record(log, 0xab, 2, {Point::counter("c", 8), Point::gauge("g", 2.5)});
  log += std::string(100, '\0');  // preallocated room
  write_all(FileRepository::log_path(path_), log);
  {
    auto repo = open(path_, kSync);
    EXPECT_EQ(list_sync(*repo),
              (std::vector<Point>{Point::counter("c", 8), Point::gauge("g", 2.5)}));
    EXPECT_EQ(list_series_sync(*repo),
              (std::vector<Point>{Point::counter("c", 8), Point::gauge("g", 2.5)}));
    apply_sync(*repo, {Update::counter("c", 1, inst("a"))}, 50);
    copy_files(path_, crash_);  // the new log, version 2, continues a version 2 snapshot
  }
  auto recovered = open(crash_, kSync);
  EXPECT_EQ(list_sync(*recovered),
            (std::vector<Point>{Point::counter("c", 9), Point::gauge("g", 2.5)}));
  EXPECT_EQ(get_sync(*recovered, {MetricType::counter, "c", inst("a")}),
            at(Point::counter("c", 1, inst("a")), 50));
  EXPECT_EQ(get_sync(*recovered, {MetricType::counter, "c", {}}), Point::counter("c", 8));
}

// Files the version 1 program (commit e886da7) left when it was killed in
// synchronous mode after three batches: {Alloc=1.5, PollCount+5,
// quote"s=-0.0}, {PollCount+2, Alloc=2.25}, {PollCount-1, counter Alloc+7}.
// Its snapshot is the empty one written at start, its log (cut after the
// last record: the preallocated zeros are left out) the three group commits.
constexpr std::string_view kV1CrashSnapshot =
    "{\"format\":\"metrics-snapshot\",\"version\":1,\"log_id\":\"c3674b9c1dcd2286\",\"seq\":0,"
    "\"metrics\":[\n]}\n";
constexpr char kV1CrashLog[] =
    "\x4d\x54\x52\x43\x57\x41\x4c\x31\x86\x22\xcd\x1d\x9c\x4b\x67\xc3\x3a\x00\x00\x00\xd2\xba\x9d"
    "\xfc"
    "\x01\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00\x07\x00\x71\x75\x6f\x74\x65\x22\x73\x00"
    "\x00"
    "\x00\x00\x00\x00\x00\x80\x01\x09\x00\x50\x6f\x6c\x6c\x43\x6f\x75\x6e\x74\x05\x00\x00\x00\x00"
    "\x00"
    "\x00\x00\x00\x05\x00\x41\x6c\x6c\x6f\x63\x00\x00\x00\x00\x00\x00\xf8\x3f\x28\x00\x00\x00\xf5"
    "\xe7"
    "\xba\xcf\x02\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x05\x00\x41\x6c\x6c\x6f\x63\x00"
    "\x00"
    "\x00\x00\x00\x00\x02\x40\x01\x09\x00\x50\x6f\x6c\x6c\x43\x6f\x75\x6e\x74\x07\x00\x00\x00\x00"
    "\x00"
    "\x00\x00\x28\x00\x00\x00\x00\xa8\x69\x75\x03\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x01"
    "\x05"
    "\x00\x41\x6c\x6c\x6f\x63\x07\x00\x00\x00\x00\x00\x00\x00\x01\x09\x00\x50\x6f\x6c\x6c\x43\x6f"
    "\x75"
    "\x6e\x74\x06\x00\x00\x00\x00\x00\x00\x00";

TEST_F(FileRepositorySync, FilesOfTheVersion1ProgramRecover) {
  write_all(path_, std::string(kV1CrashSnapshot));
  write_all(FileRepository::log_path(path_), std::string(kV1CrashLog, sizeof kV1CrashLog - 1));
  const std::vector<Point> want{Point::gauge("Alloc", 2.25), Point::counter("Alloc", 7),
                                Point::counter("PollCount", 6), Point::gauge("quote\"s", -0.0)};
  {
    auto repo = open(path_, kSync);
    expect_bit_exact(list_sync(*repo), want);
    expect_bit_exact(list_series_sync(*repo), want);  // unlabelled, time 0
    apply_sync(*repo, {Update::counter("PollCount", 1, inst("a"))}, 5);
  }
  // Rewritten in version 2 and read back.
  EXPECT_THAT(read_all(path_), ::testing::HasSubstr(R"("version":2,)"));
  auto repo = open(path_, kHour);
  EXPECT_EQ(get_classic_sync(*repo, {MetricType::counter, "PollCount"}),
            Point::counter("PollCount", 7));
  EXPECT_EQ(get_sync(*repo, {MetricType::counter, "PollCount", {}}),
            Point::counter("PollCount", 6));
  EXPECT_EQ(get_sync(*repo, {MetricType::counter, "PollCount", inst("a")}),
            at(Point::counter("PollCount", 1, inst("a")), 5));
}

TEST_F(FileRepositorySync, ExpiryIsDurableBeforeItCompletes) {
  auto repo = open(path_, kSync);
  apply_sync(*repo, {Update::counter("c", 1, inst("old")), Update::gauge("g", 1)}, 10);
  apply_sync(*repo, {Update::counter("c", 2, inst("new"))}, 20);
  auto gone = expire_sync(*repo, 15);
  std::sort(gone.begin(), gone.end());
  EXPECT_EQ(gone, (std::vector<SeriesKey>{{MetricType::counter, "c", inst("old")},
                                          {MetricType::gauge, "g", {}}}));
  // Written again in the same log after the removal: starts fresh.
  apply_sync(*repo, {Update::counter("c", 4, inst("old"))}, 30);
  copy_files(path_, crash_);
  auto recovered = open(crash_, kSync);
  EXPECT_EQ(list_series_sync(*recovered),
            (std::vector<Point>{at(Point::counter("c", 2, inst("new")), 20),
                                at(Point::counter("c", 4, inst("old")), 30)}));
  EXPECT_EQ(list_sync(*recovered),
            (std::vector<Point>{Point::counter("c", 7), Point::gauge("g", 1)}));
  EXPECT_TRUE(expire_sync(*repo, 15).empty());
}

TEST_F(FileRepositorySync, BatchesAroundAnExpiryInOneGroupKeepTheirOrder) {
  auto repo = open(path_, kSync);
  apply_sync(*repo, {Update::counter("c", 1, inst("a"))}, 10);
  // Queued together: likely one group, with the expiry in the middle.
  std::atomic<int> done{0};
  repo->apply({Update::counter("c", 1, inst("a"))}, 5, [&](std::exception_ptr e, Applied a) {
    EXPECT_FALSE(e);
    EXPECT_EQ(a.series, std::vector<Point>{at(Point::counter("c", 2, inst("a")), 5)});
    ++done;
  });
  repo->expire(8, [&](std::exception_ptr e, std::vector<SeriesKey> gone) {
    EXPECT_FALSE(e);
    EXPECT_EQ(gone, (std::vector<SeriesKey>{{MetricType::counter, "c", inst("a")}}));
    ++done;
  });
  repo->apply({Update::counter("c", 1, inst("a"))}, 9, [&](std::exception_ptr e, Applied a) {
    EXPECT_FALSE(e);
    EXPECT_EQ(a.series, std::vector<Point>{at(Point::counter("c", 1, inst("a")), 9)});
    EXPECT_EQ(a.classic, std::vector<Point>{Point::counter("c", 3)});
    ++done;
  });
  repo->close();
  EXPECT_EQ(done.load(), 3);
  auto reopened = open(path_, kSync);
  EXPECT_EQ(list_series_sync(*reopened),
            std::vector<Point>{at(Point::counter("c", 1, inst("a")), 9)});
}

TEST_F(FileRepositorySync, OverflowOfAClassicTotalFailsOnlyItsBatch) {
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  auto repo = open(path_, kSync);
  apply_sync(*repo, {Update::counter("c", kMax, inst("a"))}, 1);
  EXPECT_THROW(apply_sync(*repo, {Update::gauge("g", 1), Update::counter("c", 1, inst("b"))}, 2),
               core::InvalidInput);
  apply_sync(*repo, {Update::gauge("h", 1)}, 3);
  copy_files(path_, crash_);
  auto recovered = open(crash_, kSync);
  EXPECT_EQ(list_sync(*recovered),
            (std::vector<Point>{Point::counter("c", kMax), Point::gauge("h", 1)}));
  EXPECT_EQ(list_series_sync(*recovered).size(), 2U);
}

TEST_F(FileRepositorySync, SnapshotIsReadableJson) {
  {
    auto repo = open(path_, kSync);
    apply_sync(*repo,
               {Update::gauge("Alloc", 1.5), Update::counter("PollCount", 3),
                Update::counter("PollCount", 2, inst("a"))},
               77);
  }
  EXPECT_THAT(read_all(path_),
              ::testing::StartsWith(R"({"format":"metrics-snapshot","version":2,)"));
  EXPECT_THAT(read_all(path_),
              ::testing::HasSubstr(R"({"id":"Alloc","type":"gauge","value":1.5})"));
  EXPECT_THAT(
      read_all(path_),
      ::testing::HasSubstr(
          R"({"id":"PollCount","type":"counter","delta":2,"labels":{"instance":"a"},"timestamp_ms":77})"));
}

TEST_F(FileRepositorySync, FullQueueIsOverloaded) {
  auto repo = std::make_unique<FileRepository>(
      FileOptions{.path = path_, .store_interval = kSync, .max_queue = 1});
  std::atomic<int> ok{0};
  std::atomic<int> overloaded{0};
  std::atomic<int> done{0};
  for (int i = 0; i < 200; ++i) {
    repo->apply({Update::counter("c", 1)}, 1, [&](std::exception_ptr err, Applied) {
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
  EXPECT_EQ(get_classic_sync(*repo, {MetricType::counter, "c"}), Point::counter("c", ok.load()));
}

TEST(FileRepositoryInterval, WritesTheSnapshotEveryIntervalOfTheClock) {
  TempDir dir;
  const auto path = dir.path() / "db.json";
  auto clock = std::make_shared<core::ManualClock>();
  constexpr milliseconds kInterval{300'000};  // the default: five minutes
  FileRepository repo({.path = path, .store_interval = kInterval, .clock = clock});
  apply_sync(repo, {Update::counter("c", 3)});
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
  EXPECT_EQ(list_sync(*recovered), std::vector<Point>{Point::counter("c", 3)});
  // Nothing changed: the next interval writes nothing.
  fs::remove(path);
  const auto next = clock->await_waiter(*due);
  clock->advance(kInterval);
  ASSERT_TRUE(clock->await_waiter(*next));
  EXPECT_FALSE(fs::exists(path));
  repo.close();
  EXPECT_TRUE(fs::exists(path));  // close() always writes
}

// Keyed writes race the snapshot thread (every millisecond): each adds 1 to
// one counter under a key of its own, so a snapshot is consistent exactly
// when it holds as many keys as the counter's value. More keys would answer
// a retry for a write the crash lost; fewer would count a retry twice.
TEST(FileRepositoryInterval, ASnapshotHoldsAKeyExactlyWhenItHoldsItsWrite) {
  TempDir dir;
  const auto path = dir.path() / "db.json";
  FileRepository repo({.path = path, .store_interval = milliseconds{1}});
  const std::int64_t now_ms =
      std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  // The writers run until the reader has checked enough snapshots (bounded
  // in count and time).
  constexpr int kWriters = 4;
  constexpr int kMaxWrites = 5'000;
  constexpr int kSnapshots = 15;
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kWriters; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kMaxWrites && !stop.load(); ++i) {
        const auto key = "w" + std::to_string(t) + "-" + std::to_string(i);
        const auto once =
            apply_once_sync(repo, {Update::counter("c", 1)}, now_ms + i, Guard::of(key, "+1"));
        ASSERT_EQ(once.outcome, Once::applied);
        written.fetch_add(1);
      }
    });
  }
  int checked = 0;
  int inconsistent = 0;
  const auto copy = dir.path() / "copy.json";
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds{60};
  while (checked < kSnapshots && std::chrono::steady_clock::now() < until) {
    if (!fs::exists(path)) {
      std::this_thread::sleep_for(milliseconds{1});
      continue;
    }
    fs::copy_file(path, copy, fs::copy_options::overwrite_existing);
    auto crashed = open(copy, kHour);
    const auto c = get_classic_sync(*crashed, {MetricType::counter, "c"});
    const auto keys = static_cast<std::int64_t>(crashed->keys().list().size());
    if (keys != (c ? c->total : 0)) ++inconsistent;
    ++checked;
  }
  stop.store(true);
  for (auto& w : writers)
    w.join();
  EXPECT_GE(checked, 5);
  EXPECT_EQ(inconsistent, 0) << "of " << checked << " snapshots";
  repo.close();
  auto last = open(path, kHour);
  EXPECT_EQ(get_classic_sync(*last, {MetricType::counter, "c"})->total, written.load());
  EXPECT_EQ(last->keys().list().size(), static_cast<std::size_t>(written.load()));
}

}  // namespace
}  // namespace metrics::storage::testing

namespace metrics::storage::testing {
namespace {

TEST(FileRepositoryStats, SynchronousModeCountsGroupCommitsAndShowsItsQueue) {
  TempDir dir;
  FileRepository repo(
      {.path = dir.path() / "db.json", .store_interval = milliseconds{0}, .max_queue = 77});
  EXPECT_EQ(repo.stats().queue_capacity, 77u);
  EXPECT_EQ(repo.stats().group_commits, 0u);
  (void)apply_sync(repo, {Update::gauge("a", 1)}, 1);
  (void)apply_sync(repo, {Update::gauge("b", 2)}, 2);
  const StorageStats s = repo.stats();
  EXPECT_EQ(s.queue_depth, 0u);  // every apply_sync was answered
  EXPECT_GE(s.group_commits, 1u);
  EXPECT_EQ(s.grouped_batches, 2u);
}

TEST(FileRepositoryStats, IntervalModeHasNoQueue) {
  TempDir dir;
  FileRepository repo({.path = dir.path() / "db.json"});
  (void)apply_sync(repo, {Update::gauge("a", 1)}, 1);
  const StorageStats s = repo.stats();
  EXPECT_EQ(s.queue_capacity, 0u);
  EXPECT_EQ(s.group_commits, 0u);
}

}  // namespace
}  // namespace metrics::storage::testing
