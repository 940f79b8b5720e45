#include "moelens_storage/sqlite.h"

#include <sqlite3.h>

#include <utility>

#include "moelens_storage/error.h"

namespace moelens::storage {

namespace {

ErrorKind kind_of(int rc)
{
    switch (rc & 0xff) {
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
            return ErrorKind::Corrupt;
        case SQLITE_FULL:
            return ErrorKind::DiskFull;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
            return ErrorKind::Locked;
        case SQLITE_READONLY:
        case SQLITE_PERM:
        case SQLITE_CANTOPEN:
            return ErrorKind::ReadOnly;
        case SQLITE_IOERR:
            return ErrorKind::Io;
        case SQLITE_CONSTRAINT:
            return ErrorKind::Constraint;
        default:
            return ErrorKind::Sql;
    }
}

// Keeps a sqlite3_stmt in bounds: column indexes come from our own SQL constants,
// so an out-of-range one is a programming error, reported rather than UB.
void check_column(sqlite3_stmt* stmt, int column)
{
    if (column < 0 || column >= sqlite3_column_count(stmt))
        throw StorageError(ErrorKind::Sql,
                           "column " + std::to_string(column) + " out of range in: " + sqlite3_sql(stmt));
}

}  // namespace

const char* to_string(ErrorKind kind)
{
    switch (kind) {
        case ErrorKind::Sql:
            return "sql";
        case ErrorKind::Corrupt:
            return "corrupt";
        case ErrorKind::NewerVersion:
            return "newer-version";
        case ErrorKind::Locked:
            return "locked";
        case ErrorKind::ReadOnly:
            return "read-only";
        case ErrorKind::DiskFull:
            return "disk-full";
        case ErrorKind::Io:
            return "io";
        case ErrorKind::Constraint:
            return "constraint";
        case ErrorKind::NotFound:
            return "not-found";
        case ErrorKind::InvalidInput:
            return "invalid-input";
        case ErrorKind::TraceFormat:
            return "trace-format";
    }
    return "unknown";
}

// ---------------------------------------------------------------------------
// Db
// ---------------------------------------------------------------------------

Db::Db(const std::string& path, Mode mode, const std::string& uri_suffix) : m_path(path)
{
    int flags = SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX;
    switch (mode) {
        case Mode::ReadWriteCreate:
            flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
            break;
        case Mode::ReadWrite:
            flags |= SQLITE_OPEN_READWRITE;
            break;
        case Mode::ReadOnly:
            flags |= SQLITE_OPEN_READONLY;
            break;
    }
    // A file: URI so that parameters such as immutable=1 can be passed; characters
    // that URIs reserve are percent-encoded so any path works.
    std::string uri = "file:";
    for (char c : path) {
        if (c == '%' || c == '?' || c == '#') {
            static const char hex[] = "0123456789ABCDEF";
            uri += '%';
            uri += hex[(static_cast<unsigned char>(c) >> 4) & 0xf];
            uri += hex[static_cast<unsigned char>(c) & 0xf];
        } else {
            uri += c;
        }
    }
    if (!uri_suffix.empty()) uri += "?" + uri_suffix;
    const int rc = sqlite3_open_v2(uri.c_str(), &m_db, flags, nullptr);
    if (rc != SQLITE_OK) {
        const std::string message = m_db ? sqlite3_errmsg(m_db) : sqlite3_errstr(rc);
        sqlite3_close_v2(m_db);
        m_db = nullptr;
        throw StorageError(kind_of(rc), "cannot open database " + path + ": " + message);
    }
    sqlite3_extended_result_codes(m_db, 1);
}

Db::~Db()
{
    // close_v2 defers the close until every statement is finalized, so a Statement
    // outliving its Db cannot touch freed memory.
    if (m_db) sqlite3_close_v2(m_db);
}

Db::Db(Db&& other) noexcept : m_db(std::exchange(other.m_db, nullptr)), m_path(std::move(other.m_path)) {}

Db& Db::operator=(Db&& other) noexcept
{
    if (this != &other) {
        if (m_db) sqlite3_close_v2(m_db);
        m_db = std::exchange(other.m_db, nullptr);
        m_path = std::move(other.m_path);
    }
    return *this;
}

void Db::fail(int rc, std::string_view context) const
{
    std::string message(context);
    message += ": ";
    message += m_db ? sqlite3_errmsg(m_db) : sqlite3_errstr(rc);
    message += " (";
    message += sqlite3_errstr(rc);
    message += ", code " + std::to_string(rc) + ") in " + m_path;
    throw StorageError(kind_of(rc), message);
}

void Db::exec(std::string_view sql)
{
    const std::string text(sql);
    char* error = nullptr;
    const int rc = sqlite3_exec(m_db, text.c_str(), nullptr, nullptr, &error);
    if (rc != SQLITE_OK) {
        std::string message = "executing '" + text.substr(0, 80) + "': " + (error ? error : sqlite3_errstr(rc));
        sqlite3_free(error);
        throw StorageError(kind_of(rc), message + " (code " + std::to_string(rc) + ") in " + m_path);
    }
}

Statement Db::prepare(std::string_view sql)
{
    return Statement(*this, sql);
}

std::int64_t Db::query_int(std::string_view sql)
{
    Statement stmt(*this, sql);
    if (!stmt.step()) throw StorageError(ErrorKind::Sql, "no row from: " + std::string(sql));
    return stmt.column_int(0);
}

std::string Db::query_text(std::string_view sql)
{
    Statement stmt(*this, sql);
    if (!stmt.step()) throw StorageError(ErrorKind::Sql, "no row from: " + std::string(sql));
    return stmt.column_text(0);
}

void Db::keep_wal_on_close()
{
    const int rc = sqlite3_db_config(m_db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    if (rc != SQLITE_OK) fail(rc, "disabling the checkpoint on close");
}

std::int64_t Db::last_insert_rowid() const
{
    return sqlite3_last_insert_rowid(m_db);
}
int Db::changes() const
{
    return sqlite3_changes(m_db);
}
bool Db::read_only() const
{
    return sqlite3_db_readonly(m_db, "main") == 1;
}

// ---------------------------------------------------------------------------
// Statement
// ---------------------------------------------------------------------------

Statement::Statement(const Db& db, std::string_view sql) : m_db(&db)
{
    const int rc = sqlite3_prepare_v2(db.handle(), sql.data(), static_cast<int>(sql.size()), &m_stmt, nullptr);
    if (rc != SQLITE_OK) db.fail(rc, "preparing '" + std::string(sql.substr(0, 80)) + "'");
}

Statement::~Statement()
{
    if (m_stmt) sqlite3_finalize(m_stmt);
}

Statement::Statement(Statement&& other) noexcept : m_db(other.m_db), m_stmt(std::exchange(other.m_stmt, nullptr)) {}

Statement& Statement::bind(int index, std::int64_t value)
{
    const int rc = sqlite3_bind_int64(m_stmt, index, value);
    if (rc != SQLITE_OK) m_db->fail(rc, "binding parameter " + std::to_string(index));
    return *this;
}

Statement& Statement::bind(int index, double value)
{
    const int rc = sqlite3_bind_double(m_stmt, index, value);
    if (rc != SQLITE_OK) m_db->fail(rc, "binding parameter " + std::to_string(index));
    return *this;
}

Statement& Statement::bind(int index, std::string_view text)
{
    const int rc = sqlite3_bind_text64(m_stmt, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    if (rc != SQLITE_OK) m_db->fail(rc, "binding parameter " + std::to_string(index));
    return *this;
}

Statement& Statement::bind_blob(int index, std::span<const std::uint8_t> blob)
{
    // A zero-length blob still binds as a blob (not NULL): SQLite needs a non-null pointer.
    static const std::uint8_t empty = 0;
    const int rc =
        sqlite3_bind_blob64(m_stmt, index, blob.empty() ? &empty : blob.data(), blob.size(), SQLITE_TRANSIENT);
    if (rc != SQLITE_OK) m_db->fail(rc, "binding parameter " + std::to_string(index));
    return *this;
}

Statement& Statement::bind_null(int index)
{
    const int rc = sqlite3_bind_null(m_stmt, index);
    if (rc != SQLITE_OK) m_db->fail(rc, "binding parameter " + std::to_string(index));
    return *this;
}

bool Statement::step()
{
    const int rc = sqlite3_step(m_stmt);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    // Reset so the statement is reusable and the connection's error state is fresh.
    const std::string context = std::string("running '") + std::string(sqlite3_sql(m_stmt)).substr(0, 80) + "'";
    sqlite3_reset(m_stmt);
    m_db->fail(rc, context);
}

void Statement::run()
{
    while (step()) {
    }
}

void Statement::reset()
{
    sqlite3_reset(m_stmt);
    sqlite3_clear_bindings(m_stmt);
}

bool Statement::is_null(int column) const
{
    check_column(m_stmt, column);
    return sqlite3_column_type(m_stmt, column) == SQLITE_NULL;
}

std::int64_t Statement::column_int(int column) const
{
    check_column(m_stmt, column);
    return sqlite3_column_int64(m_stmt, column);
}

double Statement::column_double(int column) const
{
    check_column(m_stmt, column);
    return sqlite3_column_double(m_stmt, column);
}

std::string Statement::column_text(int column) const
{
    check_column(m_stmt, column);
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(m_stmt, column));
    const int size = sqlite3_column_bytes(m_stmt, column);
    return text ? std::string(text, static_cast<std::size_t>(size)) : std::string();
}

std::vector<std::uint8_t> Statement::column_blob(int column) const
{
    check_column(m_stmt, column);
    const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(m_stmt, column));
    const int size = sqlite3_column_bytes(m_stmt, column);
    return data ? std::vector<std::uint8_t>(data, data + size) : std::vector<std::uint8_t>();
}

// ---------------------------------------------------------------------------
// Transaction
// ---------------------------------------------------------------------------

Transaction::Transaction(Db& db) : m_db(db)
{
    m_db.exec("BEGIN IMMEDIATE");
}

Transaction::~Transaction()
{
    if (m_done) return;
    // ROLLBACK can itself fail only if SQLite already rolled back (e.g. after
    // SQLITE_FULL); in both cases the transaction is gone, which is what we want.
    try {
        m_db.exec("ROLLBACK");
    } catch (const StorageError&) {
    }
}

void Transaction::commit()
{
    m_db.exec("COMMIT");
    m_done = true;
}

}  // namespace moelens::storage
