#pragma once
// Crash-safe output: every file microcount writes goes to a temporary name beside the target,
// is flushed to disk (fsync), and only then renamed over the target. A crash or a full disk
// leaves the previous file intact and no half-written one under the real name.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "microcount/core/error.hpp"

namespace microcount::io {

namespace detail {
inline void fsync_path(const std::filesystem::path& p, bool directory) {
  const int fd = ::open(p.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return;  // best effort for directories on file systems that refuse it
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && !directory) throw error(p.string(), std::string("cannot flush to disk: ") + std::strerror(err));
}
}  // namespace detail

// Calls write(tmp) to produce the file under a temporary name, then fsyncs and renames it to `path`.
// Parent folders are created. On any failure the temporary file is removed and `path` is untouched.
inline void write_atomically(const std::filesystem::path& path,
                             const std::function<void(const std::filesystem::path& tmp)>& write) {
  namespace fs = std::filesystem;
  const fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw error(parent.string(), "cannot create folder: " + ec.message());
  std::string tmp_name = path.filename().string();
  tmp_name.insert(tmp_name.begin(), '.');
  tmp_name += ".tmp-" + std::to_string(::getpid());
  const fs::path tmp = parent / tmp_name;
  try {
    write(tmp);
    detail::fsync_path(tmp, false);
    fs::rename(tmp, path, ec);
    if (ec) throw error(path.string(), "cannot rename temporary file into place: " + ec.message());
    detail::fsync_path(parent, true);
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
}

// Removes the temporary files that write_atomically left in `folder` when its process was killed
// (".<name>.tmp-<pid>" whose process no longer exists); those of live processes stay. Returns how many
// went. Called where a run starts or resumes, so kill -9 leaves no lasting half-written checkpoints.
inline std::size_t remove_stale_temporaries(const std::filesystem::path& folder) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::size_t removed = 0;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const auto at = name.rfind(".tmp-");
    if (name.empty() || name[0] != '.' || at == std::string::npos || at + 5 >= name.size()) continue;
    const std::string digits = name.substr(at + 5);
    if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto pid = static_cast<pid_t>(std::stol(digits));
    if (pid <= 0 || ::kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to judge
    std::error_code rm;
    if (fs::remove(it->path(), rm)) ++removed;
  }
  return removed;
}

// Writes `content` to `path` atomically.
inline void write_text_atomically(const std::filesystem::path& path, std::string_view content) {
  write_atomically(path, [&](const std::filesystem::path& tmp) {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) throw error(tmp.string(), std::string("cannot open for writing: ") + std::strerror(errno));
    const std::size_t n = std::fwrite(content.data(), 1, content.size(), f);
    const bool flushed = std::fflush(f) == 0;
    const int err = errno;
    std::fclose(f);
    if (n != content.size() || !flushed)
      throw error(path.string(), std::string("write failed (disk full?): ") + std::strerror(err));
  });
}

// Reads a whole file into a string; a missing or unreadable file is a microcount::error.
inline std::string read_text(const std::filesystem::path& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw error(path.string(), std::string("cannot open: ") + std::strerror(errno));
  std::string out;
  char buf[1 << 16];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  const bool bad = std::ferror(f) != 0;
  std::fclose(f);
  if (bad) throw error(path.string(), "read error");
  return out;
}

}  // namespace microcount::io
