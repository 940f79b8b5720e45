#pragma once
// The schema's history. `PRAGMA user_version` holds the number of the last migration
// applied; each migration runs in its own transaction together with the version bump,
// so a database is always exactly at one version, never between two.
#include <span>

#include "moelens_storage/sqlite.h"

namespace moelens::storage {

struct Migration {
    int version;       // 1, 2, 3, ... in order, no gaps
    const char* name;  // what it adds, for logs and errors
    const char* sql;   // one or more statements
};

std::span<const Migration> schema_migrations();
int latest_schema_version();

// Applies the migrations of `list` above the database's user_version, up to and
// including `target`. Throws StorageError (NewerVersion if the database is already
// above `target`); a failing migration is rolled back and leaves the version as it was.
void migrate(Db& db, int target, std::span<const Migration> list = schema_migrations());

}  // namespace moelens::storage
