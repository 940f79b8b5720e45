#include "lock_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace moelens::storage {

LockFile::~LockFile()
{
    release();
}

LockFile::LockFile(LockFile&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}

LockFile& LockFile::operator=(LockFile&& other) noexcept
{
    if (this != &other) {
        release();
        m_fd = std::exchange(other.m_fd, -1);
    }
    return *this;
}

LockFile::Outcome LockFile::acquire(const std::string& path, std::string& detail)
{
    release();
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        detail = "cannot create lock file " + path + ": " + std::strerror(errno);
        return Outcome::Unwritable;
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        char pid[32] = {};
        const ssize_t n = ::pread(fd, pid, sizeof pid - 1, 0);
        ::close(fd);
        if (err == EWOULDBLOCK) {
            detail = "in use by another running MoE Lens";
            if (n > 0) detail += " (process " + std::string(pid, static_cast<std::size_t>(n)) + ")";
            return Outcome::HeldByOther;
        }
        detail = "cannot lock " + path + ": " + std::strerror(err);
        return Outcome::Unwritable;
    }
    // Our pid, only to name the holder in the other instance's message.
    const std::string pid = std::to_string(::getpid());
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
        // The lock is what matters; a missing pid only makes a message less precise.
    }
    m_fd = fd;
    return Outcome::Acquired;
}

void LockFile::release()
{
    if (m_fd >= 0) {
        ::flock(m_fd, LOCK_UN);
        ::close(m_fd);
        m_fd = -1;
    }
}

}  // namespace moelens::storage
