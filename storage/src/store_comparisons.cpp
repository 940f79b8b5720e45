// Store: comparisons (the compare view's stored runs) and their columns.
#include "moelens_storage/trace_codec.h"
#include "store_state.h"

namespace moelens::storage {

namespace {

constexpr const char* kInsertComparison =
    "INSERT INTO comparisons (chat_id, title, context_json, model_path, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr const char* kInsertColumn =
    "INSERT INTO comparison_columns (comparison_id, position, label, sampling_json, moe_json)"
    " VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr const char* kChatExists = "SELECT 1 FROM chats WHERE id = ?1";
constexpr const char* kSummaryColumns =
    "SELECT c.id, c.chat_id, c.title, c.created_ms,"
    " (SELECT count(*) FROM comparison_columns k WHERE k.comparison_id = c.id),"
    " (SELECT count(*) FROM comparison_columns k WHERE k.comparison_id = c.id AND k.finished_ms > 0)"
    " FROM comparisons c ";
constexpr const char* kListAll = "ORDER BY c.created_ms DESC, c.id DESC";
constexpr const char* kListOfChat = "WHERE c.chat_id = ?1 ORDER BY c.created_ms DESC, c.id DESC";
constexpr const char* kGetComparison =
    "SELECT id, chat_id, title, context_json, model_path, created_ms FROM comparisons WHERE id = ?1";
constexpr const char* kGetColumns =
    "SELECT position, label, sampling_json, moe_json, text, stop_reason, error, tokens_in, tokens_out, decode_tps,"
    " finished_ms, trace FROM comparison_columns WHERE comparison_id = ?1 ORDER BY position";
constexpr const char* kSaveResult =
    "UPDATE comparison_columns SET text = ?3, stop_reason = ?4, error = ?5, tokens_in = ?6, tokens_out = ?7,"
    " decode_tps = ?8, finished_ms = ?9 WHERE comparison_id = ?1 AND position = ?2";
constexpr const char* kSaveTrace =
    "UPDATE comparison_columns SET trace = ?3 WHERE comparison_id = ?1 AND position = ?2";
constexpr const char* kSetChat = "UPDATE comparisons SET chat_id = ?2 WHERE id = ?1";
constexpr const char* kDeleteComparison = "DELETE FROM comparisons WHERE id = ?1";

void require_object(const std::string& json, const char* what, std::size_t column)
{
    // json_valid in the schema checks the syntax; a column's settings must be an object.
    if (json.empty() || json.front() != '{')
        throw StorageError(ErrorKind::InvalidInput, std::string("comparison column ") + std::to_string(column) + ": " +
                                                        what + " must be a JSON object, found '" +
                                                        json.substr(0, 60) + "'");
}

std::vector<ComparisonSummary> read_summaries(Statement& s)
{
    std::vector<ComparisonSummary> out;
    while (s.step()) {
        ComparisonSummary c;
        c.id = s.column_int(0);
        if (!s.is_null(1)) c.chat = s.column_int(1);
        c.title = s.column_text(2);
        c.created_ms = s.column_int(3);
        c.columns = static_cast<int>(s.column_int(4));
        c.finished_columns = static_cast<int>(s.column_int(5));
        out.push_back(std::move(c));
    }
    return out;
}

}  // namespace

ComparisonId Store::create_comparison(const NewComparison& comparison)
{
    require_writable("store a comparison");
    for (std::size_t i = 0; i < comparison.columns.size(); ++i) {
        require_object(comparison.columns[i].sampling_json, "sampling settings", i);
        require_object(comparison.columns[i].moe_json, "MoE settings", i);
    }
    Db& db = m_state->db;
    Transaction tx(db);
    if (comparison.chat) {
        Statement exists = db.prepare(kChatExists);
        exists.bind(1, *comparison.chat);
        if (!exists.step()) throw_not_found("chat", *comparison.chat);
    }
    Statement insert = db.prepare(kInsertComparison);
    if (comparison.chat)
        insert.bind(1, *comparison.chat);
    else
        insert.bind_null(1);
    insert.bind(2, comparison.title).bind(3, comparison.context_json.empty() ? std::string("[]") : comparison.context_json);
    insert.bind(4, comparison.model_path).bind(5, now_ms());
    try {
        insert.run();
    } catch (const StorageError& e) {
        if (e.kind() != ErrorKind::Constraint) throw;
        throw StorageError(ErrorKind::InvalidInput, "comparison context must be valid JSON, found '" +
                                                        comparison.context_json.substr(0, 60) + "'");
    }
    const ComparisonId id = db.last_insert_rowid();
    for (std::size_t i = 0; i < comparison.columns.size(); ++i) {
        const ComparisonColumn& c = comparison.columns[i];
        try {
            db.prepare(kInsertColumn).bind_all(id, static_cast<std::int64_t>(i), c.label, c.sampling_json, c.moe_json).run();
        } catch (const StorageError& e) {
            if (e.kind() != ErrorKind::Constraint) throw;
            throw StorageError(ErrorKind::InvalidInput,
                               "comparison column " + std::to_string(i) + ": settings must be valid JSON");
        }
    }
    tx.commit();
    return id;
}

std::vector<ComparisonSummary> Store::list_comparisons(std::optional<ChatId> chat)
{
    Statement s = m_state->db.prepare(std::string(kSummaryColumns) + (chat ? kListOfChat : kListAll));
    if (chat) s.bind(1, *chat);
    return read_summaries(s);
}

std::optional<Comparison> Store::load_comparison(ComparisonId id)
{
    Db& db = m_state->db;
    Statement s = db.prepare(kGetComparison);
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    Comparison c;
    c.id = s.column_int(0);
    if (!s.is_null(1)) c.chat = s.column_int(1);
    c.title = s.column_text(2);
    c.context_json = s.column_text(3);
    c.model_path = s.column_text(4);
    c.created_ms = s.column_int(5);
    Statement cols = db.prepare(kGetColumns);
    cols.bind(1, id);
    while (cols.step()) {
        StoredColumn col;
        col.settings.label = cols.column_text(1);
        col.settings.sampling_json = cols.column_text(2);
        col.settings.moe_json = cols.column_text(3);
        if (cols.column_int(10) > 0) {
            ComparisonResult r;
            r.text = cols.column_text(4);
            r.stop_reason = cols.column_text(5);
            r.error = cols.column_text(6);
            r.tokens_in = cols.column_int(7);
            r.tokens_out = cols.column_int(8);
            r.decode_tokens_per_s = cols.column_double(9);
            r.finished_ms = cols.column_int(10);
            col.result = std::move(r);
        }
        if (!cols.is_null(11)) {
            try {
                col.trace = decode_trace(cols.column_blob(11));
            } catch (const StorageError& e) {
                throw StorageError(e.kind(), "trace of comparison " + std::to_string(id) + " column " +
                                                 std::to_string(cols.column_int(0)) + " in " + m_state->path + ": " +
                                                 e.what());
            }
        }
        c.columns.push_back(std::move(col));
    }
    return c;
}

void Store::save_comparison_result(ComparisonId id, int position, const ComparisonResult& result,
                                   const RoutingTrace* trace)
{
    require_writable("save a comparison result");
    // Encoded before the transaction, as finish_reply does: a bad trace costs nothing stored.
    std::vector<std::uint8_t> blob;
    if (trace) blob = encode_trace(*trace);
    Db& db = m_state->db;
    Transaction tx(db);
    // A result without a time would read as "not run": stamp it now.
    const std::int64_t finished = result.finished_ms > 0 ? result.finished_ms : now_ms();
    db.prepare(kSaveResult)
        .bind_all(id, static_cast<std::int64_t>(position), result.text, result.stop_reason, result.error,
                  result.tokens_in, result.tokens_out, result.decode_tokens_per_s, finished)
        .run();
    if (db.changes() != 1)
        throw StorageError(ErrorKind::NotFound, "comparison " + std::to_string(id) + " has no column " +
                                                    std::to_string(position));
    Statement t = db.prepare(kSaveTrace);
    t.bind(1, id).bind(2, static_cast<std::int64_t>(position));
    if (trace)
        t.bind_blob(3, blob);
    else
        t.bind_null(3);
    t.run();
    tx.commit();
}

void Store::set_comparison_chat(ComparisonId id, ChatId chat)
{
    require_writable("move a comparison to a chat");
    Db& db = m_state->db;
    Transaction tx(db);
    Statement exists = db.prepare(kChatExists);
    exists.bind(1, chat);
    if (!exists.step()) throw_not_found("chat", chat);
    db.prepare(kSetChat).bind_all(id, chat).run();
    if (db.changes() != 1) throw_not_found("comparison", id);
    tx.commit();
}

void Store::delete_comparison(ComparisonId id)
{
    require_writable("delete a comparison");
    Db& db = m_state->db;
    {
        Transaction tx(db);
        db.prepare(kDeleteComparison).bind(1, id).run();
        if (db.changes() != 1) throw_not_found("comparison", id);
        tx.commit();
    }
    scrub_wal(db);
}

}  // namespace moelens::storage
