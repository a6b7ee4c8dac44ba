#include "detail/unique_fd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace metrics::storage::detail {
namespace {

[[noreturn]] void throw_errno(const std::string& what, const std::filesystem::path& path) {
  throw std::system_error(errno, std::generic_category(), what + " " + path.string());
}

std::filesystem::path folder_of(const std::filesystem::path& path) {
  auto parent = path.parent_path();
  return parent.empty() ? std::filesystem::path{"."} : parent;
}

}  // namespace

void UniqueFd::reset(int fd) noexcept {
  if (fd_ >= 0) {
    // close() errors cannot be acted on here; durability is decided by the
    // fsync that precedes every close that matters.
    ::close(fd_);
  }
  fd_ = fd;
}

bool read_file_if_exists(const std::filesystem::path& path, std::string& out) {
  out.clear();
  UniqueFd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (!fd) {
    // ENOTDIR: a parent is a file, so this file cannot exist either.
    if (errno == ENOENT || errno == ENOTDIR) return false;
    throw_errno("cannot open", path);
  }
  char buf[1 << 16];
  for (;;) {
    const auto n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot read", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return true;
}

void pwrite_all(int fd, std::string_view data, std::uint64_t offset,
                const std::filesystem::path& path) {
  while (!data.empty()) {
    const auto n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot write", path);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
}

void fsync_dir(const std::filesystem::path& dir) {
  UniqueFd fd{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (!fd) throw_errno("cannot open folder", dir);
  if (::fsync(fd.get()) != 0) throw_errno("cannot fsync folder", dir);
}

std::filesystem::path write_temp(const std::filesystem::path& path, std::string_view data) {
  const auto dir = folder_of(path);
  std::error_code ec;
  if (std::filesystem::create_directories(dir, ec); ec) {
    throw std::system_error(ec, "cannot create folder " + dir.string());
  }
  auto tmp = path;
  tmp += ".tmp";
  UniqueFd fd{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
  if (!fd) throw_errno("cannot create", tmp);
  try {
    pwrite_all(fd.get(), data, 0, tmp);
    if (::fsync(fd.get()) != 0) throw_errno("cannot fsync", tmp);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  return tmp;
}

void commit_temp(const std::filesystem::path& tmp, const std::filesystem::path& path) {
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(tmp.c_str());
    errno = saved;
    throw_errno("cannot rename over", path);
  }
  fsync_dir(folder_of(path));
}

}  // namespace metrics::storage::detail
