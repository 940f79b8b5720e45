#include "moelens_storage/migrations.h"

#include <string>

#include "moelens_storage/error.h"

namespace moelens::storage {

namespace {

// v1: the core tables. Branches: a message's parent is the message it answers or
// follows; regenerate and edit add a sibling under the same parent instead of
// overwriting. chats.current_leaf_id is the last message of the branch on screen.
// messages.parent_id has no ON DELETE action on purpose: a cascade down a long chain
// would recurse once per message and hit SQLite's trigger depth limit (1000); whole
// subtrees are deleted in one statement instead (the check runs at statement end).
constexpr const char* kV1Core = R"sql(
CREATE TABLE chats (
    id              INTEGER PRIMARY KEY,
    title           TEXT    NOT NULL DEFAULT '',
    model           TEXT    NOT NULL DEFAULT '',
    system_prompt   TEXT    NOT NULL DEFAULT '',
    pinned          INTEGER NOT NULL DEFAULT 0 CHECK (pinned IN (0, 1)),
    archived        INTEGER NOT NULL DEFAULT 0 CHECK (archived IN (0, 1)),
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    current_leaf_id INTEGER REFERENCES messages(id) ON DELETE SET NULL
);
CREATE INDEX chats_by_leaf ON chats(current_leaf_id);
CREATE INDEX chats_by_update ON chats(pinned DESC, updated_ms DESC);

CREATE TABLE messages (
    id         INTEGER PRIMARY KEY,
    chat_id    INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    parent_id  INTEGER REFERENCES messages(id),
    role       TEXT    NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content    TEXT    NOT NULL DEFAULT '',
    state      TEXT    NOT NULL DEFAULT 'complete'
               CHECK (state IN ('streaming', 'complete', 'stopped', 'failed', 'interrupted')),
    created_ms INTEGER NOT NULL
);
CREATE INDEX messages_by_chat ON messages(chat_id, parent_id);
CREATE INDEX messages_by_parent ON messages(parent_id);
CREATE INDEX messages_streaming ON messages(state) WHERE state = 'streaming';

CREATE TABLE runs (
    id                INTEGER PRIMARY KEY,
    message_id        INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    model_path        TEXT    NOT NULL,
    model_fingerprint TEXT    NOT NULL,
    sampling_json     TEXT    NOT NULL CHECK (json_valid(sampling_json)),
    tokens_in         INTEGER NOT NULL,
    tokens_out        INTEGER NOT NULL,
    prefill_tps       REAL    NOT NULL,
    decode_tps        REAL    NOT NULL,
    stop_reason       TEXT    NOT NULL,
    error             TEXT    NOT NULL,
    started_ms        INTEGER NOT NULL,
    finished_ms       INTEGER NOT NULL
);
CREATE INDEX runs_by_message ON runs(message_id);

CREATE TABLE traces (
    run_id         INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    format_version INTEGER NOT NULL,
    n_tokens       INTEGER NOT NULL,
    data           BLOB    NOT NULL
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    type  TEXT NOT NULL CHECK (type IN ('bool', 'int', 'double', 'string', 'json')),
    value ANY
);
)sql";

// v2: full-text search over message text. An external-content FTS5 index (the text
// lives once, in messages) kept in step by triggers, and built for existing rows.
constexpr const char* kV2Search = R"sql(
CREATE VIRTUAL TABLE messages_fts USING fts5(
    content, content = 'messages', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2');
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;
INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
)sql";

// v3: named sampling presets.
constexpr const char* kV3Presets = R"sql(
CREATE TABLE presets (
    name          TEXT PRIMARY KEY,
    sampling_json TEXT    NOT NULL CHECK (json_valid(sampling_json)),
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL
);
)sql";

// v4: comparisons (the compare view): one prompt or chat context run under several
// settings side by side. The columns keep their settings, result and routing trace
// (the trace codec's blob, as traces.data) so a comparison reopens after a restart.
// A comparison of a chat goes with the chat (deleted means gone); one over a new
// prompt has no chat. Columns are ordered by `position`, unique per comparison.
constexpr const char* kV4Comparisons = R"sql(
CREATE TABLE comparisons (
    id           INTEGER PRIMARY KEY,
    chat_id      INTEGER REFERENCES chats(id) ON DELETE CASCADE,
    title        TEXT    NOT NULL DEFAULT '',
    context_json TEXT    NOT NULL CHECK (json_valid(context_json)),
    model_path   TEXT    NOT NULL DEFAULT '',
    created_ms   INTEGER NOT NULL
);
CREATE INDEX comparisons_by_chat ON comparisons(chat_id, created_ms);

CREATE TABLE comparison_columns (
    comparison_id  INTEGER NOT NULL REFERENCES comparisons(id) ON DELETE CASCADE,
    position       INTEGER NOT NULL CHECK (position >= 0),
    label          TEXT    NOT NULL DEFAULT '',
    sampling_json  TEXT    NOT NULL CHECK (json_valid(sampling_json)),
    moe_json       TEXT    NOT NULL CHECK (json_valid(moe_json)),
    text           TEXT    NOT NULL DEFAULT '',
    stop_reason    TEXT    NOT NULL DEFAULT '',
    error          TEXT    NOT NULL DEFAULT '',
    tokens_in      INTEGER NOT NULL DEFAULT 0,
    tokens_out     INTEGER NOT NULL DEFAULT 0,
    decode_tps     REAL    NOT NULL DEFAULT 0,
    finished_ms    INTEGER NOT NULL DEFAULT 0,
    trace          BLOB,
    PRIMARY KEY (comparison_id, position)
);
)sql";

// v5: the expert-parallel placement and traffic of a run (virtual devices), as
// JSON beside its other figures; NULL for runs on one device and every older run.
constexpr const char* kV5RunDevices = R"sql(
ALTER TABLE runs ADD COLUMN devices_json TEXT CHECK (devices_json IS NULL OR json_valid(devices_json));
)sql";

constexpr Migration kMigrations[] = {
    {1, "core tables (chats, messages, runs, traces, settings)", kV1Core},
    {2, "full-text search over messages", kV2Search},
    {3, "sampling presets", kV3Presets},
    {4, "comparisons and their columns", kV4Comparisons},
    {5, "device placement and traffic of runs", kV5RunDevices},
};

}  // namespace

std::span<const Migration> schema_migrations()
{
    return kMigrations;
}

int latest_schema_version()
{
    return kMigrations[std::size(kMigrations) - 1].version;
}

void migrate(Db& db, int target, std::span<const Migration> list)
{
    const int current = static_cast<int>(db.query_int("PRAGMA user_version"));
    if (current > target)
        throw StorageError(ErrorKind::NewerVersion, "database " + db.path() + " has schema version " +
                                                        std::to_string(current) + ", newer than the " +
                                                        std::to_string(target) + " this build knows");
    for (const Migration& m : list) {
        if (m.version <= current || m.version > target) continue;
        Transaction tx(db);
        try {
            db.exec(m.sql);
            db.exec("PRAGMA user_version = " + std::to_string(m.version));
        } catch (const StorageError& e) {
            throw StorageError(e.kind(),
                               "migration " + std::to_string(m.version) + " (" + m.name + ") failed: " + e.what());
        }
        tx.commit();
    }
}

}  // namespace moelens::storage
