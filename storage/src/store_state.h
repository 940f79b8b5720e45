#pragma once
// What a Store holds; shared by the store_*.cpp files that implement it.
#include <chrono>
#include <string>

#include "lock_file.h"
#include "moelens_storage/store.h"

namespace moelens::storage {

struct Store::State {
    Db db;
    LockFile lock;  // held by the writable Store only
    OpenReport report;
    std::string path;
};

// Merges the search index so that no words of deleted rows remain in it (FTS5 keeps
// them, marked deleted, until a merge); run inside the deleting transaction.
extern const char* const kOptimizeSearch;
// After a committed deletion: checkpoints and truncates the WAL (old page images).
void scrub_wal(Db& db);

inline std::int64_t now_ms()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

[[noreturn]] inline void throw_not_found(const char* what, std::int64_t id)
{
    throw StorageError(ErrorKind::NotFound, std::string(what) + " " + std::to_string(id) + " does not exist");
}

}  // namespace moelens::storage
