// The history dir: restart, a stale checkpoint, truncated and corrupt
// files, a file that is not ours, and the lock.
#include "metrics/history/disk.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace history = metrics::history;
namespace core = metrics::core;
using core::MetricType;

class HistoryDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "history-dir-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  static history::HistoryOptions options() {
    history::HistoryOptions o;
    o.track_closed = true;
    o.retention = std::chrono::milliseconds{0};
    o.max_bytes = 0;
    o.chunk_samples = 50;
    return o;
  }
  history::HistoryDirOptions dir_options() {
    history::HistoryDirOptions o;
    o.dir = dir_;
    o.log = [this](std::string_view line) { log_.emplace_back(line); };
    return o;
  }
  // Series 1 a gauge, 2 a counter with labels; `n` samples each from `from`.
  static void fill(history::HistoryStore& store, std::int64_t from, std::int64_t n) {
    const history::SeriesIdentity g{MetricType::gauge, "Alloc", core::Labels{}};
    const history::SeriesIdentity c{MetricType::counter, "PollCount",
                                    core::Labels::make({{"instance", "h:1"}, {"job", "agent"}})};
    for (std::int64_t i = from; i < from + n; ++i) {
      store.append(1, g, i * 10'000, static_cast<double>(i) * 1.5);
      store.append(2, c, i * 10'000, i * 5);
    }
  }
  static std::vector<history::SeriesSamples> all(const history::HistoryStore& store) {
    const std::vector<history::SeriesRef> refs{1, 2};
    return store.read_range(refs, INT64_MIN, INT64_MAX);
  }
  static std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  static void write(const fs::path& p, const std::string& data) {
    std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
  }
  fs::path first_segment() const {
    for (const auto& e : fs::directory_iterator(dir_))
      if (e.path().filename().string().rfind("segment-", 0) == 0) return e.path();
    return {};
  }

  fs::path dir_;
  std::vector<std::string> log_;
};

TEST_F(HistoryDirTest, RestartKeepsEverythingAndContinues) {
  std::vector<history::SeriesSamples> before;
  {
    history::HistoryStore store(options());
    history::HistoryDir dir(dir_options());
    EXPECT_EQ(dir.load(store).chunks, 0u);
    fill(store, 0, 130);  // 2 closed chunks and an open one of 30 each
    dir.flush(store);
    before = all(store);
  }
  {
    history::HistoryStore store(options());
    history::HistoryDir dir(dir_options());
    const auto report = dir.load(store);
    EXPECT_TRUE(report.problems.empty());
    EXPECT_EQ(report.samples, 260u);
    EXPECT_EQ(report.chunks, 6u);
    const auto after = all(store);
    ASSERT_EQ(after.size(), 2u);
    for (std::size_t k = 0; k < 2; ++k) {
      EXPECT_EQ(*after[k].identity, *before[k].identity);
      EXPECT_EQ(after[k].samples, before[k].samples);
    }
    // The reloaded open chunk continues; a second restart keeps it all.
    fill(store, 130, 100);
    dir.flush(store);
  }
  history::HistoryStore store(options());
  history::HistoryDir dir(dir_options());
  const auto report = dir.load(store);
  EXPECT_TRUE(report.problems.empty());
  EXPECT_EQ(report.samples, 460u);
  const auto again = all(store);
  ASSERT_EQ(again.size(), 2u);
  ASSERT_EQ(again[1].samples.size(), 230u);
  for (std::int64_t i = 0; i < 230; ++i) {
    EXPECT_EQ(again[0].samples[static_cast<std::size_t>(i)].gauge(), static_cast<double>(i) * 1.5);
    EXPECT_EQ(again[1].samples[static_cast<std::size_t>(i)].counter(), i * 5);
  }
  EXPECT_EQ(again[1].identity->labels.get("job"), "agent");
}

// A crash between the segment's fsync and the checkpoint's rename leaves a
// checkpoint whose open chunk the segments already hold as closed.
TEST_F(HistoryDirTest, MapRefGivesStoredSeriesNewRefs) {
  {
    history::HistoryStore store(options());
    history::HistoryDir dir(dir_options());
    dir.load(store);
    fill(store, 0, 70);
    dir.flush(store);
  }
  auto dopt = dir_options();
  dopt.map_ref = [](const history::SeriesIdentity& id,
                    history::SeriesRef stored) -> std::optional<history::SeriesRef> {
    if (id.id == "Alloc") return std::nullopt;  // no longer wanted
    return stored + 100;
  };
  history::HistoryStore store(options());
  history::HistoryDir dir(dopt);
  const auto report = dir.load(store);
  EXPECT_EQ(report.samples, 70u);
  EXPECT_EQ(report.skipped_chunks, 2u);
  const auto series = store.series();
  ASSERT_EQ(series.size(), 1u);
  EXPECT_EQ(series[0].ref, 102u);
  EXPECT_EQ(series[0].identity->id, "PollCount");
}

TEST_F(HistoryDirTest, StaleCheckpointIsNotLoadedTwice) {
  {
    history::HistoryStore store(options());
    history::HistoryDir dir(dir_options());
    dir.load(store);
    fill(store, 0, 40);  // open chunks only
    dir.flush(store);
    const std::string old_checkpoint = read(dir_ / "checkpoint.hist");
    fill(store, 40, 20);  // closes them (50), opens new ones (10)
    dir.flush(store);
    write(dir_ / "checkpoint.hist", old_checkpoint);
  }
  history::HistoryStore store(options());
  history::HistoryDir dir(dir_options());
  const auto report = dir.load(store);
  EXPECT_TRUE(report.problems.empty());
  EXPECT_EQ(report.skipped_chunks, 2u);
  const auto after = all(store);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].samples.size(), 50u);  // the closed chunk; the newest 10 are lost
}

TEST_F(HistoryDirTest, TruncatedSegmentKeepsItsGoodPrefix) {
  {
    history::HistoryStore store(options());
    history::HistoryDir dir(dir_options());
    dir.load(store);
    fill(store, 0, 160);  // 3 closed chunks per series
    dir.flush(store);
  }
  const auto segment = first_segment();
  ASSERT_FALSE(segment.empty());
  const std::string full = read(segment);
  write(segment, full.substr(0, full.size() - 7));
  fs::remove(dir_ / "checkpoint.hist");

  history::HistoryStore store(options());
  history::HistoryDir dir(dir_options());
  const auto report = dir.load(store);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find(segment.string()), std::string::npos) << report.problems[0];
  EXPECT_NE(report.problems[0].find("truncated"), std::string::npos);
  EXPECT_EQ(report.chunks, 5u);  // the sixth record was cut
  EXPECT_TRUE(fs::exists(segment));
  EXPECT_EQ(fs::file_size(segment), full.size() - 7);  // left as it was
  bool logged = false;
  for (const auto& line : log_)
    logged |= line.find(segment.string()) != std::string::npos;
  EXPECT_TRUE(logged);
  // New chunks go to a new segment, never after the bad tail.
  fill(store, 1000, 60);
  dir.flush(store);
  EXPECT_EQ(fs::file_size(segment), full.size() - 7);
}

TEST_F(HistoryDirTest, CorruptRecordIsReportedAndTheRestSkipped) {
  {
    history::HistoryStore store(options());
    history::HistoryDir dir(dir_options());
    dir.load(store);
    fill(store, 0, 160);
    dir.flush(store);
  }
  const auto segment = first_segment();
  std::string data = read(segment);
  data[data.size() / 2] = static_cast<char>(data[data.size() / 2] ^ 0x40);
  write(segment, data);
  std::string checkpoint = read(dir_ / "checkpoint.hist");
  checkpoint[checkpoint.size() - 3] = static_cast<char>(checkpoint[checkpoint.size() - 3] ^ 1);
  write(dir_ / "checkpoint.hist", checkpoint);

  history::HistoryStore store(options());
  history::HistoryDir dir(dir_options());
  const auto report = dir.load(store);
  ASSERT_EQ(report.problems.size(), 2u);
  EXPECT_NE(report.problems[0].find("corrupt record"), std::string::npos) << report.problems[0];
  EXPECT_NE(report.problems[0].find(segment.string()), std::string::npos);
  EXPECT_GT(report.chunks, 0u);
  EXPECT_LT(report.chunks, 8u);
  EXPECT_EQ(read(segment), data);  // untouched
  // The bad checkpoint is kept aside, not overwritten by the next flush.
  EXPECT_NE(report.problems[1].find("checkpoint.hist.bad-1"), std::string::npos)
      << report.problems[1];
  dir.flush(store);
  EXPECT_EQ(read(dir_ / "checkpoint.hist.bad-1"), checkpoint);
}

TEST_F(HistoryDirTest, ForeignFileIsReportedNotDeleted) {
  write(dir_ / "segment-000001.hist", "not a history file at all");
  history::HistoryStore store(options());
  history::HistoryDir dir(dir_options());
  const auto report = dir.load(store);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find("bad magic"), std::string::npos);
  EXPECT_EQ(read(dir_ / "segment-000001.hist"), "not a history file at all");
  fill(store, 0, 60);
  dir.flush(store);  // goes to segment-000002
  EXPECT_TRUE(fs::exists(dir_ / "segment-000002.hist"));
  EXPECT_EQ(read(dir_ / "segment-000001.hist"), "not a history file at all");
}

TEST_F(HistoryDirTest, SecondOpenNamesTheHolder) {
  history::HistoryDir first(dir_options());
  try {
    history::HistoryDir second(dir_options());
    FAIL() << "a second HistoryDir locked the same folder";
  } catch (const history::HistoryDirLocked& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("process " + std::to_string(::getpid())), std::string::npos) << what;
    EXPECT_NE(what.find(dir_.string()), std::string::npos) << what;
  }
}

// A child process appends and flushes, telling the parent after each flush
// how many samples are on disk; the parent kills it with SIGKILL at a
// flush boundary it does not choose (the child keeps going), then reopens
// the folder (the kernel released the lock) and finds at least what was
// flushed, as an exact prefix of what was written.
TEST_F(HistoryDirTest, KillNineLosesAtMostTheUnflushedTail) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    history::HistoryStore store(options());
    history::HistoryDir dir(dir_options());
    dir.load(store);
    for (std::int64_t round = 0;; ++round) {
      fill(store, round * 7, 7);
      dir.flush(store);
      const std::int64_t flushed = (round + 1) * 7;
      if (::write(fds[1], &flushed, sizeof flushed) != sizeof flushed) ::_exit(1);
    }
  }
  ::close(fds[1]);
  // Whatever happens below, the child does not outlive the test.
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      if (pid > 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    }
  } reaper{child};
  std::int64_t flushed = 0;
  for (int i = 0; i < 40; ++i)
    ASSERT_EQ(::read(fds[0], &flushed, sizeof flushed), static_cast<ssize_t>(sizeof flushed));
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  reaper.pid = 0;
  EXPECT_TRUE(WIFSIGNALED(status));
  ::close(fds[0]);

  history::HistoryStore store(options());
  history::HistoryDir dir(dir_options());  // the lock died with the child
  const auto report = dir.load(store);
  // A kill in the middle of a segment write leaves a torn last record.
  EXPECT_LE(report.problems.size(), 1u);
  const auto after = all(store);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_GE(static_cast<std::int64_t>(after[1].samples.size()), flushed);
  for (std::size_t i = 0; i < after[1].samples.size(); ++i) {
    ASSERT_EQ(after[1].samples[i].t_ms, static_cast<std::int64_t>(i) * 10'000);
    ASSERT_EQ(after[1].samples[i].counter(), static_cast<std::int64_t>(i) * 5);
  }
}

// start() flushes on its own thread at every interval of the clock, and
// stop() once more.
TEST_F(HistoryDirTest, BackgroundFlushOnTheClock) {
  auto clock = std::make_shared<core::ManualClock>();
  auto dopt = dir_options();
  dopt.clock = clock;
  dopt.flush_interval = std::chrono::seconds{10};
  {
    history::HistoryStore store(options());
    history::HistoryDir dir(dopt);
    dir.load(store);
    dir.start(store);
    fill(store, 0, 60);
    ASSERT_TRUE(clock->await_waiter().has_value());
    EXPECT_FALSE(fs::exists(dir_ / "checkpoint.hist"));
    clock->advance(std::chrono::seconds{10});
    // The flusher writes, then waits for the next round.
    const auto first = clock->await_waiter(clock->steady_now());
    ASSERT_TRUE(first.has_value());
    EXPECT_TRUE(fs::exists(dir_ / "checkpoint.hist"));
    fill(store, 60, 5);
    dir.stop();  // the last flush has the 5 new samples
  }
  history::HistoryStore store(options());
  history::HistoryDir dir(dir_options());
  EXPECT_EQ(dir.load(store).samples, 130u);
}

TEST_F(HistoryDirTest, StoreWithoutTrackClosedIsRefused) {
  history::HistoryOptions o = options();
  o.track_closed = false;
  history::HistoryStore store(o);
  history::HistoryDir dir(dir_options());
  EXPECT_THROW(dir.load(store), std::invalid_argument);
  EXPECT_THROW(dir.flush(store), std::invalid_argument);
}

TEST(Crc32c, KnownValue) {
  // The check value of CRC-32C (RFC 3720).
  EXPECT_EQ(history::crc32c("123456789"), 0xe3069283u);
}

}  // namespace
