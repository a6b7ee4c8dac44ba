// History through real server processes (API.md Part 2, "History"): the
// history dir survives a graceful restart (and the reloaded series keep
// growing), kill -9 loses at most what was not flushed yet, a corrupt file
// is reported by name while the current values still load, and a second
// server on the same dir refuses naming the holder's pid. The dir is read
// with the library (history::HistoryDir) once the server is gone.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "metrics/history/disk.hpp"
#include "process_support.hpp"

namespace metrics::testing {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;

fs::path fresh_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("metrics-hist-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Every series in a history dir (not locked by anyone), as the library
// reads it back.
std::vector<history::SeriesSamples> read_dir(const fs::path& d) {
  history::HistoryOptions o;
  o.track_closed = true;
  o.retention = std::chrono::milliseconds{0};
  o.max_bytes = 0;
  history::HistoryStore store(o);
  history::HistoryDirOptions dir_options;
  dir_options.dir = d;
  history::HistoryDir dir(dir_options);
  (void)dir.load(store);
  return store.read_range([](history::SeriesRef, const history::SeriesIdentity&) { return true; },
                          std::numeric_limits<std::int64_t>::min(),
                          std::numeric_limits<std::int64_t>::max());
}

// The counter totals of series `id` with labels `labels` ("{...}").
std::vector<std::int64_t> totals(const std::vector<history::SeriesSamples>& all,
                                 const std::string& id, const std::string& labels) {
  std::vector<std::int64_t> out;
  for (const auto& s : all) {
    if (s.identity->id != id || s.identity->labels.to_string() != labels) continue;
    for (const auto& sample : s.samples)
      out.push_back(sample.counter());
  }
  return out;
}

void post_counter(Client& c, const std::string& instance, int delta) {
  const auto res =
      c.post_json("/updates/", R"({"labels":{"instance":")" + instance +
                                   R"("},"metrics":[{"id":"c","type":"counter","delta":)" +
                                   std::to_string(delta) + "}]}");
  ASSERT_EQ(res.result_int(), 200) << res.body();
}

TEST(HistoryProcess, SurvivesAGracefulRestartAndKeepsGrowing) {
  const auto dir = fresh_dir("restart");
  const auto hist = dir / "history";
  {
    ServerProcess server({"-f", "", "--history-dir", hist.string()});
    ASSERT_TRUE(server.wait_ready());
    Client c(server.port());
    for (int i = 0; i < 3; ++i)
      post_counter(c, "a", 2);
    // Gauges append their value, bit for bit.
    ASSERT_EQ(c.post_json("/update/", R"({"id":"g","type":"gauge","value":0.1,"labels":{"x":"1"}})")
                  .result_int(),
              200);
    ASSERT_EQ(server.stop(SIGTERM), 0);
  }
  auto all = read_dir(hist);
  EXPECT_EQ(totals(all, "c", R"({instance="a"})"), (std::vector<std::int64_t>{2, 4, 6}));
  bool gauge_seen = false;
  for (const auto& s : all) {
    if (s.identity->id == "g") {
      ASSERT_EQ(s.samples.size(), 1U);
      EXPECT_EQ(s.samples[0].gauge(), 0.1);
      EXPECT_EQ(s.identity->labels.to_string(), R"({x="1"})");
      gauge_seen = true;
    }
  }
  EXPECT_TRUE(gauge_seen);
  {
    // The memory storage starts empty: the counter's total starts again, and
    // its history (reloaded, under the index's new id) goes on.
    ServerProcess server({"-f", "", "--history-dir", hist.string()});
    ASSERT_TRUE(server.wait_ready());
    Client c(server.port());
    post_counter(c, "a", 5);
    ASSERT_EQ(server.stop(SIGTERM), 0);
  }
  all = read_dir(hist);
  EXPECT_EQ(totals(all, "c", R"({instance="a"})"), (std::vector<std::int64_t>{2, 4, 6, 5}));
  fs::remove_all(dir);
}

TEST(HistoryProcess, NoHistoryKeepsCurrentValuesOnlyAndLeavesTheDirAlone) {
  const auto dir = fresh_dir("off");
  const auto hist = dir / "history";
  {
    ServerProcess server({"-f", "", "--history-dir", hist.string(), "--no-history"});
    ASSERT_TRUE(server.wait_ready());
    Client c(server.port());
    for (int i = 0; i < 3; ++i)
      post_counter(c, "a", 2);
    const auto res =
        c.post_json("/value/", R"({"id":"c","type":"counter","labels":{"instance":"a"}})");
    ASSERT_EQ(res.result_int(), 200) << res.body();
    EXPECT_THAT(res.body(), HasSubstr(R"("delta":6)"));
    ASSERT_EQ(server.stop(SIGTERM), 0);
  }
  // Not even created, let alone locked or written.
  EXPECT_FALSE(fs::exists(hist));
  fs::remove_all(dir);
}

TEST(HistoryProcess, Kill9LosesAtMostWhatWasNotFlushed) {
  const auto dir = fresh_dir("kill9");
  const auto hist = dir / "history";
  const auto copy = dir / "copy";
  ServerProcess server({"-f", "", "--history-dir", hist.string()});
  ASSERT_TRUE(server.wait_ready());
  Client c(server.port());
  for (int i = 0; i < 3; ++i)
    post_counter(c, "k", 1);
  // Wait for a background flush (every 10 s) to hold the first three: read
  // a copy of the dir, since the running server holds its lock.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{40};
  std::vector<std::int64_t> flushed;
  while (std::chrono::steady_clock::now() < deadline) {
    fs::remove_all(copy);
    fs::create_directories(copy);
    for (const auto& e : fs::directory_iterator(hist)) {
      if (e.path().extension() == ".hist") fs::copy_file(e.path(), copy / e.path().filename());
    }
    flushed = totals(read_dir(copy), "c", R"({instance="k"})");
    if (flushed.size() >= 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds{200});
  }
  ASSERT_EQ(flushed, (std::vector<std::int64_t>{1, 2, 3}));
  for (int i = 0; i < 3; ++i)
    post_counter(c, "k", 1);
  (void)server.stop(SIGKILL);
  // What is on disk is the flushed part plus possibly some of the rest, in
  // order: a prefix of 1..6 at least 3 long.
  const auto after = totals(read_dir(hist), "c", R"({instance="k"})");
  ASSERT_GE(after.size(), 3U);
  ASSERT_LE(after.size(), 6U);
  for (std::size_t i = 0; i < after.size(); ++i)
    EXPECT_EQ(after[i], static_cast<std::int64_t>(i + 1));
  // The kernel dropped the lock: a new server starts on the dir.
  ServerProcess again({"-f", "", "--history-dir", hist.string()});
  ASSERT_TRUE(again.wait_ready());
  ASSERT_EQ(again.stop(SIGTERM), 0);
  fs::remove_all(dir);
}

TEST(HistoryProcess, ACorruptFileIsReportedByNameAndCurrentValuesStillLoad) {
  const auto dir = fresh_dir("corrupt");
  const auto hist = dir / "history";
  const auto db = (dir / "db.json").string();
  {
    ServerProcess server({"-f", db, "-i", "0", "--history-dir", hist.string()});
    ASSERT_TRUE(server.wait_ready());
    Client c(server.port());
    post_counter(c, "z", 7);
    ASSERT_EQ(c.post("/update/counter/plain/3").result_int(), 200);
    ASSERT_EQ(server.stop(SIGTERM), 0);
  }
  // Cut the checkpoint in the middle of its record, and add a file that is
  // not a history file at all.
  const auto checkpoint = hist / "checkpoint.hist";
  ASSERT_TRUE(fs::exists(checkpoint));
  fs::resize_file(checkpoint, fs::file_size(checkpoint) - 3);
  {
    std::ofstream junk(hist / "segment-999999.hist");
    junk << "not a history file";
  }
  const auto log = (dir / "server.log").string();
  ServerProcess server({"-f", db, "-i", "0", "--history-dir", hist.string()}, log);
  ASSERT_TRUE(server.wait_ready());
  Client c(server.port());
  EXPECT_EQ(c.get("/value/counter/plain").body(), "3");
  EXPECT_EQ(
      c.post_json("/value/", R"({"id":"c","type":"counter","labels":{"instance":"z"}})").body(),
      R"({"id":"c","type":"counter","delta":7,"labels":{"instance":"z"}})");
  ASSERT_EQ(server.stop(SIGTERM), 0);
  const auto text = read_text(log);
  EXPECT_THAT(text, HasSubstr("checkpoint.hist"));
  EXPECT_THAT(text, HasSubstr("segment-999999.hist"));
  EXPECT_THAT(text, HasSubstr("truncated"));
  // Nothing was deleted without a word: the junk file is still there, and
  // the bad checkpoint was set aside, not overwritten.
  EXPECT_TRUE(fs::exists(hist / "segment-999999.hist"));
  bool set_aside = false;
  for (const auto& e : fs::directory_iterator(hist))
    set_aside = set_aside || e.path().filename().string().starts_with("checkpoint.hist.bad");
  EXPECT_TRUE(set_aside);
  fs::remove_all(dir);
}

TEST(HistoryProcess, ASecondServerOnTheSameDirRefusesNamingThePid) {
  const auto dir = fresh_dir("lock");
  const auto hist = dir / "history";
  ServerProcess first({"-f", "", "--history-dir", hist.string()});
  ASSERT_TRUE(first.wait_ready());
  const auto log = (dir / "second.log").string();
  ServerProcess second({"-f", "", "--history-dir", hist.string()}, log);
  const auto status = second.wait_exit(std::chrono::seconds{15});
  ASSERT_TRUE(status.has_value()) << "the second server is still running";
  EXPECT_TRUE(WIFEXITED(*status));
  EXPECT_NE(WEXITSTATUS(*status), 0);
  EXPECT_THAT(read_text(log), HasSubstr("in use by process " + std::to_string(first.pid())));
  // The first one is unaffected.
  Client c(first.port());
  EXPECT_EQ(c.get("/ping").result_int(), 200);
  ASSERT_EQ(first.stop(SIGTERM), 0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace metrics::testing
