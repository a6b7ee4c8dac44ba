// RAII owner of a POSIX file descriptor, plus the few file helpers the file
// storage needs (full writes, fsync of a folder, atomic replacement).
//
// Not thread-safe: one owner at a time, like the descriptor it wraps.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace metrics::storage::detail {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] explicit operator bool() const noexcept { return fd_ >= 0; }
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

// Each helper throws std::system_error naming the path on failure.

// Reads a whole file. Returns false (and leaves out empty) when it does not
// exist; throws for any other failure.
bool read_file_if_exists(const std::filesystem::path& path, std::string& out);
// Writes every byte at `offset` (pwrite, retrying short writes and EINTR).
void pwrite_all(int fd, std::string_view data, std::uint64_t offset,
                const std::filesystem::path& path);
// fsync of the folder itself, so that a create, rename or unlink inside it is durable.
void fsync_dir(const std::filesystem::path& dir);
// Writes `data` to `path` so that a crash at any moment leaves either the old
// or the new content: temp file, fsync, rename over, fsync of the folder.
// Creates the folder when missing. Done in two steps so that a caller can
// tell a failure that left `path` untouched (write_temp) from one that may
// have replaced it (commit_temp).
[[nodiscard]] std::filesystem::path write_temp(const std::filesystem::path& path,
                                               std::string_view data);
void commit_temp(const std::filesystem::path& tmp, const std::filesystem::path& path);
inline void replace_file_atomically(const std::filesystem::path& path, std::string_view data) {
  commit_temp(write_temp(path, data), path);
}

}  // namespace metrics::storage::detail
