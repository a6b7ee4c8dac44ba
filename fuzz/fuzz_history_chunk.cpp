// Fuzzes the history chunk codec (src/history/include/metrics/history/chunk.hpp):
// the decoder reads chunks back from disk, so it must be safe on any bytes.
//
// Input: byte 0 bit 0 = type (0 gauge, 1 counter), bit 1 = mode, bit 2 =
// history dir mode (then bit 3 chooses segment or checkpoint).
// - mode 0: bytes 1-2 are a sample count (little endian), the rest a chunk's
//   bytes. Properties: decoding never reads out of bounds or crashes; the
//   reader and decode_chunk agree; what decodes re-encodes to the same
//   samples; a writer resumed on it continues the chunk; the same bytes as a
//   chunk record parse only when they decode.
// - mode 1: the rest is 16-byte samples (int64 time, uint64 value bits, little
//   endian). Properties: encode → decode is the identity, bit for bit, and a
//   writer resumed halfway writes the same bytes as one that never stopped.
// - history dir mode: the rest is the content of a segment (or checkpoint)
//   file, behind a valid magic half the time (bit 4), loaded by a
//   HistoryDir. Properties: load() does not throw; every problem names the
//   file; what it restored reads back; a segment is left byte for byte as
//   it was.
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <span>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "metrics/history/chunk.hpp"
#include "metrics/history/disk.hpp"

namespace {

namespace history = metrics::history;
using metrics::core::MetricType;

std::uint64_t load64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}

std::vector<history::Sample> round_trip(MetricType type, const std::vector<history::Sample>& in,
                                        history::ChunkWriter& w) {
  for (const auto& s : in)
    w.append(s.t_ms, s.bits);
  auto out = history::decode_chunk(type, w.bytes(), w.count());
  FUZZ_CHECK(out.has_value());
  return *out;
}

void chunk_bytes(MetricType type, std::span<const std::uint8_t> data) {
  if (data.size() < 2) return;
  const auto count = static_cast<std::uint32_t>(data[0] | (data[1] << 8));
  const auto bytes = data.subspan(2);

  history::ChunkReader reader(type, bytes, count);
  std::vector<history::Sample> read;
  history::Sample s;
  while (reader.next(s.t_ms, s.bits))
    read.push_back(s);
  FUZZ_CHECK(reader.bit_position() <= bytes.size() * 8);
  FUZZ_CHECK(read.size() <= count);
  const auto decoded = history::decode_chunk(type, bytes, count);
  FUZZ_CHECK(decoded.has_value() == (!reader.failed() && read.size() == count));
  if (!decoded) {
    FUZZ_CHECK(!history::ChunkWriter::resume(type, bytes, count).has_value());
    return;
  }
  FUZZ_CHECK(*decoded == read);

  history::ChunkWriter fresh(type);
  FUZZ_CHECK(round_trip(type, *decoded, fresh) == *decoded);

  auto resumed = history::ChunkWriter::resume(type, bytes, count);
  FUZZ_CHECK(resumed.has_value());
  FUZZ_CHECK(resumed->count() == count);
  const history::Sample extra{
      read.empty()
          ? 0
          : static_cast<std::int64_t>(static_cast<std::uint64_t>(read.back().t_ms) + 10'000),
      read.empty() ? 1 : read.back().bits ^ 1};
  resumed->append(extra.t_ms, extra.bits);
  auto more = history::decode_chunk(type, resumed->bytes(), resumed->count());
  FUZZ_CHECK(more.has_value());
  auto expected = *decoded;
  expected.push_back(extra);
  FUZZ_CHECK(*more == expected);
}

void samples(MetricType type, std::span<const std::uint8_t> data) {
  std::vector<history::Sample> in;
  for (std::size_t i = 0; i + 16 <= data.size(); i += 16)
    in.push_back({static_cast<std::int64_t>(load64(&data[i])), load64(&data[i + 8])});
  history::ChunkWriter whole(type);
  FUZZ_CHECK(round_trip(type, in, whole) == in);

  const std::size_t half = in.size() / 2;
  history::ChunkWriter head(type);
  for (std::size_t i = 0; i < half; ++i)
    head.append(in[i].t_ms, in[i].bits);
  auto resumed = history::ChunkWriter::resume(type, head.bytes(), static_cast<std::uint32_t>(half));
  FUZZ_CHECK(resumed.has_value());
  for (std::size_t i = half; i < in.size(); ++i)
    resumed->append(in[i].t_ms, in[i].bits);
  FUZZ_CHECK(resumed->bit_size() == whole.bit_size());
  FUZZ_CHECK(std::equal(resumed->bytes().begin(), resumed->bytes().end(), whole.bytes().begin(),
                        whole.bytes().end()));
}

std::string scratch_dir() {
  static const std::string dir = [] {
    std::string t = (std::filesystem::temp_directory_path() / "fuzz-history-XXXXXX").string();
    if (::mkdtemp(t.data()) == nullptr) std::abort();
    remove_at_exit(t);
    return t;
  }();
  return dir;
}

void history_dir(std::uint8_t flags, std::span<const std::uint8_t> data) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(scratch_dir()) / "d";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const bool checkpoint = flags & 8;
  const fs::path file = dir / (checkpoint ? "checkpoint.hist" : "segment-000001.hist");
  std::string content;
  if (flags & 16) content.assign("MHIST\0\0\1", 8);
  content.append(reinterpret_cast<const char*>(data.data()), data.size());
  std::ofstream(file, std::ios::binary) << content;

  history::HistoryOptions options;
  options.track_closed = true;
  options.retention = std::chrono::milliseconds{0};
  history::HistoryStore store(options);
  history::HistoryDirOptions dopt;
  dopt.dir = dir;
  history::HistoryDir hd(dopt);
  const auto report = hd.load(store);
  for (const auto& p : report.problems)
    FUZZ_CHECK(p.find(file.string()) != std::string::npos);
  std::size_t samples = 0;
  for (const auto& s :
       store.read_range([](auto, const auto&) { return true; }, INT64_MIN, INT64_MAX))
    samples += s.samples.size();
  FUZZ_CHECK(samples == report.samples);
  if (!checkpoint) {
    std::ifstream in(file, std::ios::binary);
    const std::string after{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    FUZZ_CHECK(after == content);
  }
  hd.flush(store);  // writes what was restored: must not throw either
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const auto type = (data[0] & 1) ? MetricType::counter : MetricType::gauge;
  const std::span<const std::uint8_t> rest(data + 1, size - 1);
  if (data[0] & 4) {
    history_dir(data[0], rest);
    return 0;
  }
  if (data[0] & 2)
    samples(type, rest);
  else
    chunk_bytes(type, rest);

  // The same bytes as a disk record: they parse only when they decode.
  std::size_t used = 0;
  if (const auto record = history::parse_chunk_record(rest, used)) {
    FUZZ_CHECK(used <= rest.size());
    FUZZ_CHECK(history::decode_chunk(record->type, record->bytes, record->count).has_value());
  }
  return 0;
}
