#pragma once
// The single-writer guard between app instances: an exclusive flock() on
// "<database>.lock", held for the life of the writable Store. The kernel drops it when
// the process dies (even by SIGKILL), so a crash never leaves a stale lock behind; the
// file itself stays (removing it would race with an instance opening it).
#include <string>

namespace moelens::storage {

class LockFile {
public:
    enum class Outcome { Acquired, HeldByOther, Unwritable };

    LockFile() = default;
    ~LockFile();
    LockFile(LockFile&& other) noexcept;
    LockFile& operator=(LockFile&& other) noexcept;
    LockFile(const LockFile&) = delete;
    LockFile& operator=(const LockFile&) = delete;

    // On HeldByOther or Unwritable, `detail` says who holds it or why it failed.
    Outcome acquire(const std::string& path, std::string& detail);
    void release();
    bool held() const { return m_fd >= 0; }

private:
    int m_fd = -1;
};

}  // namespace moelens::storage
