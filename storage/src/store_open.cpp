// Opening a Store: the lock between instances, the checks, the safe paths for damaged,
// newer, locked and read-only databases, the durability settings and migrations.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "moelens_storage/migrations.h"
#include "store_state.h"

namespace moelens::storage {

namespace {

// Durability: WAL with synchronous=FULL syncs the WAL on every commit, so a message
// that was sent survives power loss, not only an app crash. secure_delete zeroes the
// content of deleted rows in the file. Foreign keys are off by default in SQLite.
constexpr const char* kWriterPragmas =
    "PRAGMA synchronous = FULL;"
    "PRAGMA foreign_keys = ON;"
    "PRAGMA secure_delete = ON;";
constexpr const char* kReaderPragmas =
    "PRAGMA foreign_keys = ON;"
    "PRAGMA query_only = ON;";
constexpr const char* kMarkInterrupted = "UPDATE messages SET state = 'interrupted' WHERE state = 'streaming'";

bool file_exists(const std::string& path)
{
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
}

// Reads the header and, if asked, checks every page's structure. Throws
// StorageError(Corrupt) with SQLite's first complaint.
int check_database(Db& db, bool full_check)
{
    const int version = static_cast<int>(db.query_int("PRAGMA user_version"));
    if (full_check) {
        const std::string result = db.query_text("PRAGMA quick_check");
        if (result != "ok") throw StorageError(ErrorKind::Corrupt, "database " + db.path() + " is damaged: " + result);
    }
    return version;
}

// Renames the damaged database and its WAL and shared-memory files aside under one
// new name (so SQLite tools opening the copy still find its WAL). Never deletes.
std::string move_aside(const std::string& path)
{
    char stamp[32];
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    std::string aside = path + ".corrupt-" + stamp;
    for (int i = 1; file_exists(aside); ++i) aside = path + ".corrupt-" + stamp + "-" + std::to_string(i);
    for (const char* suffix : {"", "-wal", "-shm"}) {
        const std::string from = path + suffix;
        if (!file_exists(from)) continue;
        if (std::rename(from.c_str(), (aside + suffix).c_str()) != 0)
            throw StorageError(ErrorKind::Io, "database " + path + " is damaged and could not be moved aside to " +
                                                  aside + suffix + ": " + std::strerror(errno));
    }
    return aside;
}

// A read-only connection. In a read-only directory a WAL database cannot get its
// shared-memory file; then the file is opened immutable, which is safe there because
// no other process can be writing it either.
Db open_read_only(const std::string& path, int busy_timeout_ms, bool full_check, int& version)
{
    auto configure = [&](Db& db) {
        db.exec("PRAGMA busy_timeout = " + std::to_string(busy_timeout_ms));
        db.exec(kReaderPragmas);
        version = check_database(db, full_check);
    };
    Db db(path, Db::Mode::ReadOnly);
    try {
        configure(db);
        return db;
    } catch (const StorageError& e) {
        const std::string dir = std::filesystem::path(path).parent_path().string();
        if ((e.kind() != ErrorKind::ReadOnly && e.kind() != ErrorKind::Io) ||
            ::access(dir.empty() ? "." : dir.c_str(), W_OK) == 0)
            throw;
    }
    Db immutable(path, Db::Mode::ReadOnly, "immutable=1");
    configure(immutable);
    return immutable;
}

}  // namespace

Store::Store(std::unique_ptr<State> state) : m_state(std::move(state)) {}
Store::~Store() = default;
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;

const OpenReport& Store::open_report() const
{
    return m_state->report;
}
bool Store::read_only() const
{
    return m_state->report.read_only;
}
const std::string& Store::path() const
{
    return m_state->path;
}
Db& Store::db()
{
    return m_state->db;
}

void Store::require_writable(const char* action) const
{
    if (m_state->report.read_only)
        throw StorageError(m_state->report.read_only_reason.value_or(ErrorKind::ReadOnly),
                           std::string("cannot ") + action + ": " + m_state->path + " is open read-only" +
                               (m_state->report.message.empty() ? "" : " (" + m_state->report.message + ")"));
}

Store Store::open(const std::string& path, const OpenOptions& options)
{
    auto state = std::make_unique<State>(State{Db(), LockFile(), OpenReport(), path});
    OpenReport& report = state->report;
    const int latest = latest_schema_version();
    const bool full_check = options.check == OpenOptions::Check::Always ||
                            (options.check == OpenOptions::Check::AfterUncleanShutdown && file_exists(path + "-wal"));
    report.fully_checked = full_check;

    auto open_reader = [&](ErrorKind reason, const std::string& why, bool check) {
        state->lock.release();
        int version = 0;
        report.fully_checked = check;
        state->db = open_read_only(path, options.busy_timeout_ms, check, version);
        report.read_only = true;
        report.schema_version_found = version;
        if (!options.read_only) {
            report.read_only_reason = reason;
            report.message = why + "; opened read-only, changes cannot be saved";
        }
        if (version < latest)
            throw StorageError(reason, "database " + path + " has schema version " + std::to_string(version) +
                                           " and needs " + std::to_string(latest) + ", which requires writing, but " +
                                           (why.empty() ? "it was opened read-only" : why));
        if (version > latest && report.message.empty())
            report.message = "written by a newer version of MoE Lens (schema " + std::to_string(version) +
                             ", this version knows " + std::to_string(latest) + ")";
        if (!options.read_only) spdlog::warn("storage: {}: {}", path, report.message);
        return Store(std::move(state));
    };

    if (options.read_only) return open_reader(ErrorKind::ReadOnly, "", full_check);

    std::string detail;
    switch (state->lock.acquire(path + ".lock", detail)) {
        case LockFile::Outcome::Acquired:
            break;
        case LockFile::Outcome::HeldByOther:
            // The -wal is the running instance's, not a sign of a crash.
            return open_reader(ErrorKind::Locked, path + " is " + detail, options.check == OpenOptions::Check::Always);
        case LockFile::Outcome::Unwritable: {
            const std::string dir = std::filesystem::path(path).parent_path().string();
            const char* dir_c = dir.empty() ? "." : dir.c_str();
            const bool dir_writable = ::access(dir_c, W_OK) == 0;
            if (!file_exists(dir_c))
                throw StorageError(ErrorKind::Io, "cannot create database " + path + ": the folder does not exist");
            if (!file_exists(path))
                throw StorageError(ErrorKind::ReadOnly, "cannot create database " + path + ": " +
                                                            (dir_writable ? detail : "the folder is not writable"));
            return open_reader(ErrorKind::ReadOnly,
                               dir_writable ? detail : "the folder of " + path + " is not writable", full_check);
        }
    }

    if (file_exists(path) && ::access(path.c_str(), W_OK) != 0)
        return open_reader(ErrorKind::ReadOnly, path + " is not writable", full_check);

    // Everything the writer does on open; a Corrupt error anywhere in it (the header,
    // the page check, or reading the schema for the pragmas and migrations) takes the
    // move-aside path below.
    enum class Writer { Ready, Newer, NotWritable };
    int version = 0;
    auto open_writer = [&]() {
        state->db = Db(path, Db::Mode::ReadWriteCreate);
        Db& db = state->db;
        db.exec("PRAGMA busy_timeout = " + std::to_string(options.busy_timeout_ms));
        version = check_database(db, full_check);
        if (version > latest) return Writer::Newer;
        if (db.read_only()) return Writer::NotWritable;
        const std::string mode = db.query_text("PRAGMA journal_mode = WAL");
        if (mode != "wal")
            throw StorageError(ErrorKind::Io, "cannot switch " + path + " to WAL journaling (got '" + mode + "')");
        db.exec(kWriterPragmas);
        migrate(db, latest);
        db.exec(kMarkInterrupted);
        report.interrupted_replies = db.changes();
        return Writer::Ready;
    };
    Writer outcome;
    try {
        outcome = open_writer();
    } catch (const StorageError& e) {
        // A damaged file is left exactly as found, WAL included, whatever happens next.
        if (e.kind() == ErrorKind::Corrupt && state->db.handle()) state->db.keep_wal_on_close();
        if (e.kind() != ErrorKind::Corrupt || !options.move_corrupt_aside) throw;
        state->db = Db();
        report.corrupt_copy_path = move_aside(path);
        report.message = std::string("the database was damaged (") + e.what() + "); it was kept as " +
                         report.corrupt_copy_path + " and a new, empty one was started";
        spdlog::error("storage: {}", report.message);
        outcome = open_writer();
    }
    report.schema_version_found = version;
    if (outcome == Writer::Newer) {
        state->db = Db();
        return open_reader(ErrorKind::NewerVersion,
                           "it was written by a newer version of MoE Lens (schema " + std::to_string(version) +
                               ", this version knows " + std::to_string(latest) + ")",
                           false);
    }
    if (outcome == Writer::NotWritable) return open_reader(ErrorKind::ReadOnly, path + " is not writable", false);

    if (report.interrupted_replies > 0)
        spdlog::info("storage: {} reply(s) cut off by an earlier crash marked interrupted", report.interrupted_replies);
    return Store(std::move(state));
}

void Store::checkpoint()
{
    require_writable("checkpoint");
    m_state->db.query_int("PRAGMA wal_checkpoint(TRUNCATE)");
}

}  // namespace moelens::storage
