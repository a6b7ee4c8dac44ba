// The history dir's files. Every read is bounded by the file's size; a bad
// record ends that file's reading and is reported, never thrown.
#include "metrics/history/disk.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <span>
#include <system_error>

namespace metrics::history {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kMagic{"MHIST\0\0\1", 8};  // "MHIST", 2 spare bytes, version 1
constexpr std::string_view kCheckpoint = "checkpoint.hist";
constexpr std::uint8_t kClosed = 1;
constexpr std::uint8_t kOpen = 2;
// A record larger than this is corrupt (a chunk is a few KiB).
constexpr std::uint32_t kMaxRecord = 16u << 20;

constexpr std::array<std::uint32_t, 256> make_crc_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k)
      c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kCrcTable = make_crc_table();

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// A bounded reader over a record's payload.
struct Cursor {
  std::string_view in;
  std::size_t pos = 0;
  bool get_u8(std::uint8_t& v) {
    if (pos >= in.size()) return false;
    v = static_cast<std::uint8_t>(in[pos++]);
    return true;
  }
  bool get_fixed(unsigned n, std::uint64_t& v) {
    if (in.size() - pos < n) return false;
    v = 0;
    for (unsigned i = 0; i < n; ++i)
      v |= std::uint64_t{static_cast<std::uint8_t>(in[pos + i])} << (8 * i);
    pos += n;
    return true;
  }
  bool get_varint(std::uint64_t& v) {
    v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      std::uint8_t b = 0;
      if (!get_u8(b)) return false;
      v |= std::uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  bool get_bytes(std::uint64_t n, std::string_view& out) {
    if (n > in.size() - pos) return false;
    out = in.substr(pos, static_cast<std::size_t>(n));
    pos += static_cast<std::size_t>(n);
    return true;
  }
};

// payload: u8 kind | u64 ref | u32 seq | u8 type | varint len, id |
//          varint len, encoded labels | chunk record (chunk.hpp)
void append_record(std::string& out, std::uint8_t kind, const ChunkExport& c) {
  std::string payload;
  payload.push_back(static_cast<char>(kind));
  put_u64(payload, c.ref);
  put_u32(payload, c.seq);
  payload.push_back(static_cast<char>(c.identity->type));
  put_varint(payload, c.identity->id.size());
  payload += c.identity->id;
  const auto labels = c.identity->labels.encoded();
  put_varint(payload, labels.size());
  payload += labels;
  append_chunk_record(payload, c.identity->type, c.count, c.bytes);
  put_u32(out, static_cast<std::uint32_t>(payload.size()));
  put_u32(out, crc32c(payload));
  out += payload;
}

std::optional<std::pair<std::uint8_t, ChunkExport>> parse_payload(std::string_view payload) {
  Cursor c{payload};
  std::uint8_t kind = 0, type = 0;
  std::uint64_t ref = 0, seq = 0, id_len = 0, labels_len = 0;
  std::string_view id, labels;
  if (!c.get_u8(kind) || (kind != kClosed && kind != kOpen) || !c.get_fixed(8, ref) ||
      !c.get_fixed(4, seq) || !c.get_u8(type) || type > 1 || !c.get_varint(id_len) ||
      !c.get_bytes(id_len, id) || !c.get_varint(labels_len) || !c.get_bytes(labels_len, labels))
    return std::nullopt;
  auto parsed_labels = core::Labels::from_encoded(labels);
  if (!parsed_labels) return std::nullopt;
  const auto rest = payload.substr(c.pos);
  std::size_t used = 0;
  const auto record =
      parse_chunk_record({reinterpret_cast<const std::uint8_t*>(rest.data()), rest.size()}, used);
  if (!record || used != rest.size() || static_cast<std::uint8_t>(record->type) != type)
    return std::nullopt;
  ChunkExport out;
  out.ref = ref;
  out.seq = static_cast<std::uint32_t>(seq);
  out.count = record->count;
  out.bytes.assign(record->bytes.begin(), record->bytes.end());
  out.identity = std::make_shared<const SeriesIdentity>(
      SeriesIdentity{static_cast<core::MetricType>(type), std::string(id), *parsed_labels});
  return std::make_pair(kind, std::move(out));
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("history: cannot read " + path.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_all(int fd, std::string_view data, const fs::path& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("history: cannot write " + path.string() + ": " +
                               std::strerror(errno));
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void sync_fd(int fd, const fs::path& path) {
  if (::fsync(fd) != 0)
    throw std::runtime_error("history: cannot fsync " + path.string() + ": " +
                             std::strerror(errno));
}

void sync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

fs::path segment_path(const fs::path& dir, std::uint64_t n) {
  std::string name = std::to_string(n);
  if (name.size() < 6) name.insert(0, 6 - name.size(), '0');
  return dir / ("segment-" + name + ".hist");
}

std::optional<std::uint64_t> segment_number(const fs::path& p) {
  const std::string name = p.filename().string();
  if (name.size() <= 13 || name.rfind("segment-", 0) != 0 ||
      name.substr(name.size() - 5) != ".hist")
    return std::nullopt;
  const std::string digits = name.substr(8, name.size() - 13);
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos ||
      digits.size() > 18)
    return std::nullopt;
  return std::stoull(digits);
}

}  // namespace

std::uint32_t crc32c(std::string_view data) noexcept {
  std::uint32_t c = 0xffffffffu;
  for (const char ch : data)
    c = kCrcTable[(c ^ static_cast<std::uint8_t>(ch)) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

HistoryDir::HistoryDir(HistoryDirOptions options) : options_(std::move(options)) {
  std::error_code ec;
  fs::create_directories(options_.dir, ec);
  if (ec)
    throw std::runtime_error("history: cannot create " + options_.dir.string() + ": " +
                             ec.message());
  const fs::path lock = options_.dir / "LOCK";
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0)
    throw std::runtime_error("history: cannot open " + lock.string() + ": " + std::strerror(errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::array<char, 32> buf{};
    const ssize_t n = ::pread(lock_fd_, buf.data(), buf.size() - 1, 0);
    ::close(lock_fd_);
    lock_fd_ = -1;
    std::string holder = n > 0 ? std::string(buf.data(), static_cast<std::size_t>(n)) : "";
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' '))
      holder.pop_back();
    if (err == EWOULDBLOCK)
      throw HistoryDirLocked("history: " + options_.dir.string() + " is in use by process " +
                             (holder.empty() ? "?" : holder) + " (lock " + lock.string() + ")");
    throw std::runtime_error("history: cannot lock " + lock.string() + ": " + std::strerror(err));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock_fd_, 0) != 0 || ::pwrite(lock_fd_, pid.data(), pid.size(), 0) < 0) {
    // The lock holds; only the pid in the message would be missing.
  }
}

HistoryDir::~HistoryDir() {
  stop();
  if (segment_fd_ >= 0) ::close(segment_fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

void HistoryDir::start(HistoryStore& store) {
  if (flusher_.joinable()) return;
  if (!options_.clock) options_.clock = core::real_clock();
  background_store_ = &store;
  stopping_ = false;
  flusher_ = std::thread([this] {
    std::unique_lock lock(stop_mu_);
    while (!stopping_) {
      if (options_.clock->wait_for(stop_cv_, lock, options_.flush_interval,
                                   [this] { return stopping_; }))
        break;
      lock.unlock();
      try {
        flush(*background_store_);
      } catch (const std::exception& e) {
        say(std::string("history: flush failed (trying again next round): ") + e.what());
      }
      lock.lock();
    }
  });
}

void HistoryDir::stop() {
  if (!flusher_.joinable()) return;
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  flusher_.join();
  try {
    flush(*background_store_);
  } catch (const std::exception& e) {
    say(std::string("history: last flush failed: ") + e.what());
  }
  background_store_ = nullptr;
}

void HistoryDir::say(const std::string& line) const {
  if (options_.log) options_.log(line);
}

LoadReport HistoryDir::load(HistoryStore& store) {
  // Without it flush() would never see a closed chunk.
  if (!store.tracks_closed())
    throw std::invalid_argument("history: a store written to a history dir needs track_closed");
  LoadReport report;
  std::vector<std::pair<std::uint64_t, fs::path>> segments;
  for (const auto& entry : fs::directory_iterator(options_.dir)) {
    if (!entry.is_regular_file()) continue;
    if (const auto n = segment_number(entry.path())) segments.emplace_back(*n, entry.path());
  }
  std::sort(segments.begin(), segments.end());
  if (!segments.empty()) segment_number_ = segments.back().first;

  // Reads one file's records; returns false when it had a problem.
  auto read = [&](const fs::path& path, std::int64_t* max_t) {
    ++report.files;
    std::string data;
    try {
      data = read_file(path);
    } catch (const std::exception& e) {
      report.problems.push_back(e.what());
      return false;
    }
    const std::string name = path.string();
    if (data.size() < kMagic.size() || std::string_view(data).substr(0, kMagic.size()) != kMagic) {
      report.problems.push_back(name + ": not a history file of this version (bad magic); skipped");
      return false;
    }
    std::size_t pos = kMagic.size();
    std::size_t records = 0;
    while (pos < data.size()) {
      Cursor head{std::string_view(data).substr(pos)};
      std::uint64_t len = 0, crc = 0;
      if (!head.get_fixed(4, len) || !head.get_fixed(4, crc) || len > kMaxRecord ||
          len > data.size() - pos - 8) {
        report.problems.push_back(name + ": truncated at byte " + std::to_string(pos) + " (" +
                                  std::to_string(records) + " records before it kept)");
        return false;
      }
      const std::string_view payload = std::string_view(data).substr(pos + 8, len);
      auto parsed = crc32c(payload) == crc ? parse_payload(payload) : std::nullopt;
      if (!parsed) {
        report.problems.push_back(name + ": corrupt record at byte " + std::to_string(pos) + " (" +
                                  std::to_string(records) +
                                  " records before it kept, the rest of the file skipped)");
        return false;
      }
      auto& [kind, chunk] = *parsed;
      if (max_t) *max_t = std::max(*max_t, chunk.max_t);
      const std::size_t count = chunk.count;
      std::optional<SeriesRef> ref = chunk.ref;
      if (options_.map_ref) ref = options_.map_ref(*chunk.identity, chunk.ref);
      if (ref) chunk.ref = *ref;
      if (ref && store.restore(chunk, kind == kOpen)) {
        ++report.chunks;
        report.samples += count;
      } else {
        ++report.skipped_chunks;
      }
      ++records;
      pos += 8 + static_cast<std::size_t>(len);
    }
    return true;
  };

  for (const auto& [n, path] : segments) {
    std::int64_t max_t = INT64_MIN;
    read(path, &max_t);
    segment_max_t_[n] = max_t;
  }
  const fs::path checkpoint = options_.dir / kCheckpoint;
  if (fs::exists(checkpoint) && !read(checkpoint, nullptr)) {
    // Keep the bad checkpoint beside, so that the next flush does not
    // overwrite what someone may want to look at.
    for (int i = 1;; ++i) {
      const fs::path aside =
          options_.dir / (std::string(kCheckpoint) + ".bad-" + std::to_string(i));
      if (fs::exists(aside)) continue;
      fs::rename(checkpoint, aside);
      report.problems.back() += "; kept as " + aside.string();
      break;
    }
  }
  for (const auto& p : report.problems)
    say("history: " + p);
  say("history: loaded " + std::to_string(report.chunks) + " chunks (" +
      std::to_string(report.samples) + " samples) from " + std::to_string(report.files) +
      " files in " + options_.dir.string() +
      (report.problems.empty() ? ""
                               : ", " + std::to_string(report.problems.size()) + " with problems"));
  return report;
}

void HistoryDir::open_segment() {
  if (segment_fd_ >= 0) ::close(segment_fd_);
  ++segment_number_;
  const fs::path path = segment_path(options_.dir, segment_number_);
  segment_fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
  if (segment_fd_ < 0)
    throw std::runtime_error("history: cannot create " + path.string() + ": " +
                             std::strerror(errno));
  write_all(segment_fd_, kMagic, path);
  segment_size_ = kMagic.size();
  segment_max_t_[segment_number_] = INT64_MIN;
  sync_dir(options_.dir);
}

void HistoryDir::flush(HistoryStore& store) {
  if (!store.tracks_closed())
    throw std::invalid_argument("history: a store written to a history dir needs track_closed");
  std::lock_guard lock(mu_);
  // Closed chunks first: a checkpoint never refers to a chunk the segments
  // do not have yet (load skips open chunks older than a closed one).
  const auto closed = store.take_closed();
  if (!closed.empty()) {
    if (segment_fd_ < 0 || segment_size_ >= options_.segment_bytes) open_segment();
    std::string out;
    for (const auto& c : closed) {
      append_record(out, kClosed, c);
      segment_max_t_[segment_number_] = std::max(segment_max_t_[segment_number_], c.max_t);
    }
    const fs::path path = segment_path(options_.dir, segment_number_);
    write_all(segment_fd_, out, path);
    sync_fd(segment_fd_, path);
    segment_size_ += out.size();
  }

  std::string out(kMagic);
  for (const auto& c : store.open_chunks())
    append_record(out, kOpen, c);
  const fs::path tmp = options_.dir / (std::string(kCheckpoint) + ".tmp");
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw std::runtime_error("history: cannot create " + tmp.string() + ": " +
                             std::strerror(errno));
  try {
    write_all(fd, out, tmp);
    sync_fd(fd, tmp);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  fs::rename(tmp, options_.dir / kCheckpoint);
  sync_dir(options_.dir);

  if (const auto cutoff = store.retention_cutoff_ms()) {
    for (auto it = segment_max_t_.begin(); it != segment_max_t_.end();) {
      if (it->first != segment_number_ && it->second < *cutoff) {
        const fs::path path = segment_path(options_.dir, it->first);
        std::error_code ec;
        fs::remove(path, ec);
        say("history: removed " + path.string() + " (every sample older than the retention)" +
            (ec ? ": " + ec.message() : ""));
        it = segment_max_t_.erase(it);
      } else {
        ++it;
      }
    }
  }
}

}  // namespace metrics::history
