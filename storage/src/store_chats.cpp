// Store: chats.
#include <spdlog/spdlog.h>

#include "store_state.h"

namespace moelens::storage {

namespace {

constexpr const char* kInsertChat =
    "INSERT INTO chats (title, model, system_prompt, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?4)";
constexpr const char* kChatColumns =
    "SELECT c.id, c.title, c.model, c.system_prompt, c.pinned, c.archived, c.created_ms, c.updated_ms, "
    "c.current_leaf_id,"
    " (SELECT count(*) FROM messages m WHERE m.chat_id = c.id) FROM chats c ";
constexpr const char* kWhereId = "WHERE c.id = ?1";
constexpr const char* kListOrder =
    "WHERE (?1 OR c.archived = 0) ORDER BY c.pinned DESC, c.updated_ms DESC, c.id DESC LIMIT ?2 OFFSET ?3";
constexpr const char* kSetTitle = "UPDATE chats SET title = ?2 WHERE id = ?1";
constexpr const char* kSetPinned = "UPDATE chats SET pinned = ?2 WHERE id = ?1";
constexpr const char* kSetArchived = "UPDATE chats SET archived = ?2 WHERE id = ?1";
constexpr const char* kSetSystemPrompt = "UPDATE chats SET system_prompt = ?2 WHERE id = ?1";
constexpr const char* kSetModel = "UPDATE chats SET model = ?2 WHERE id = ?1";
constexpr const char* kDeleteChat = "DELETE FROM chats WHERE id = ?1";

Chat read_chat(const Statement& s)
{
    Chat c;
    c.id = s.column_int(0);
    c.title = s.column_text(1);
    c.model = s.column_text(2);
    c.system_prompt = s.column_text(3);
    c.pinned = s.column_int(4) != 0;
    c.archived = s.column_int(5) != 0;
    c.created_ms = s.column_int(6);
    c.updated_ms = s.column_int(7);
    if (!s.is_null(8)) c.current_leaf = s.column_int(8);
    c.message_count = s.column_int(9);
    return c;
}

}  // namespace

const char* const kOptimizeSearch = "INSERT INTO messages_fts(messages_fts) VALUES ('optimize')";

ChatId Store::create_chat(const NewChat& chat)
{
    require_writable("create a chat");
    Db& db = m_state->db;
    db.prepare(kInsertChat).bind_all(chat.title, chat.model, chat.system_prompt, now_ms()).run();
    return db.last_insert_rowid();
}

std::optional<Chat> Store::get_chat(ChatId id)
{
    Statement s = m_state->db.prepare(std::string(kChatColumns) + kWhereId);
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return read_chat(s);
}

std::vector<Chat> Store::list_chats(const ChatListOptions& options)
{
    Statement s = m_state->db.prepare(std::string(kChatColumns) + kListOrder);
    s.bind_all(options.include_archived ? 1 : 0, options.limit, options.offset);
    std::vector<Chat> chats;
    while (s.step()) chats.push_back(read_chat(s));
    return chats;
}

namespace {

template <typename T>
void update_chat(Db& db, const char* sql, ChatId id, const T& value)
{
    db.prepare(sql).bind_all(id, value).run();
    if (db.changes() != 1) throw_not_found("chat", id);
}

}  // namespace

void Store::rename_chat(ChatId id, const std::string& title)
{
    require_writable("rename a chat");
    update_chat(m_state->db, kSetTitle, id, title);
}

void Store::set_chat_pinned(ChatId id, bool pinned)
{
    require_writable("pin a chat");
    update_chat(m_state->db, kSetPinned, id, pinned ? 1 : 0);
}

void Store::set_chat_archived(ChatId id, bool archived)
{
    require_writable("archive a chat");
    update_chat(m_state->db, kSetArchived, id, archived ? 1 : 0);
}

void Store::set_chat_system_prompt(ChatId id, const std::string& system_prompt)
{
    require_writable("change a system prompt");
    update_chat(m_state->db, kSetSystemPrompt, id, system_prompt);
}

void Store::set_chat_model(ChatId id, const std::string& model)
{
    require_writable("change a chat's model");
    update_chat(m_state->db, kSetModel, id, model);
}

void Store::delete_chat(ChatId id)
{
    require_writable("delete a chat");
    Db& db = m_state->db;
    {
        Transaction tx(db);
        db.prepare(kDeleteChat).bind(1, id).run();
        if (db.changes() != 1) throw_not_found("chat", id);
        db.exec(kOptimizeSearch);
        tx.commit();
    }
    scrub_wal(db);
}

void scrub_wal(Db& db)
{
    // The deletion is committed; this only removes old page images from the WAL. A
    // reader holding an old snapshot can keep the WAL from being truncated: then the
    // old frames go at the next checkpoint, which we log rather than fail.
    Statement s = db.prepare("PRAGMA wal_checkpoint(TRUNCATE)");
    if (s.step() && s.column_int(0) != 0)
        spdlog::warn("storage: checkpoint after a deletion was blocked by a reader; the WAL is scrubbed later");
}

}  // namespace moelens::storage
