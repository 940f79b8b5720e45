#pragma once
// A small RAII layer over SQLite's C API: a connection (Db), a prepared statement
// (Statement) and a transaction guard (Transaction). Every failing call throws a
// StorageError that carries SQLite's message, the extended result code and the file.
// Not thread-safe: one Db belongs to one thread at a time (see docs/storage.md).
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace moelens::storage {

class Statement;

class Db {
public:
    enum class Mode { ReadWriteCreate, ReadWrite, ReadOnly };

    // A closed connection, to be replaced by an open one.
    Db() = default;
    // `uri_suffix` is appended as URI parameters (e.g. "immutable=1").
    Db(const std::string& path, Mode mode, const std::string& uri_suffix = {});
    ~Db();
    Db(Db&& other) noexcept;
    Db& operator=(Db&& other) noexcept;
    Db(const Db&) = delete;
    Db& operator=(const Db&) = delete;

    // Runs one or more statements that return no rows the caller needs.
    void exec(std::string_view sql);
    Statement prepare(std::string_view sql);

    // Convenience for `PRAGMA x` / `SELECT count(*)`: first column of the first row.
    std::int64_t query_int(std::string_view sql);
    std::string query_text(std::string_view sql);

    std::int64_t last_insert_rowid() const;
    int changes() const;
    bool read_only() const;
    const std::string& path() const { return m_path; }
    sqlite3* handle() const { return m_db; }

    // On close, leave the WAL as it is (no checkpoint into the database, no removal):
    // for a damaged file that is kept aside exactly as it was found.
    void keep_wal_on_close();

    // Throws the StorageError for result code `rc`; `context` says what was attempted.
    [[noreturn]] void fail(int rc, std::string_view context) const;

private:
    sqlite3* m_db = nullptr;
    std::string m_path;
};

class Statement {
public:
    Statement(const Db& db, std::string_view sql);
    ~Statement();
    Statement(Statement&& other) noexcept;
    Statement& operator=(Statement&&) = delete;
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    // Parameters are 1-based, as in SQLite.
    Statement& bind(int index, std::int64_t value);
    Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
    Statement& bind(int index, double value);
    Statement& bind(int index, std::string_view text);
    Statement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
    Statement& bind(int index, const std::string& text) { return bind(index, std::string_view(text)); }
    Statement& bind_blob(int index, std::span<const std::uint8_t> blob);
    Statement& bind_null(int index);

    // Binds all values to parameters 1..N in order.
    template <typename... T>
    Statement& bind_all(const T&... values)
    {
        int index = 0;
        (bind(++index, values), ...);
        return *this;
    }

    // Advances one row: true while a row is available, false when done.
    bool step();
    // Runs a statement that returns no rows (or ignores them).
    void run();
    void reset();

    bool is_null(int column) const;
    std::int64_t column_int(int column) const;
    double column_double(int column) const;
    std::string column_text(int column) const;
    std::vector<std::uint8_t> column_blob(int column) const;

private:
    const Db* m_db;
    sqlite3_stmt* m_stmt = nullptr;
};

// BEGIN IMMEDIATE on construction (the write lock is taken up front, so a busy
// database fails here rather than halfway through); ROLLBACK unless commit() ran.
class Transaction {
public:
    explicit Transaction(Db& db);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    void commit();

private:
    Db& m_db;
    bool m_done = false;
};

}  // namespace moelens::storage
