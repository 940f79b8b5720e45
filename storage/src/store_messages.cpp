// Store: messages, streaming replies and branches.
#include "moelens_storage/trace_codec.h"
#include "rows.h"
#include "store_state.h"

namespace moelens::storage {

namespace {

constexpr const char* kInsertMessage =
    "INSERT INTO messages (chat_id, parent_id, role, content, state, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
constexpr const char* kGetLeaf = "SELECT current_leaf_id FROM chats WHERE id = ?1";
constexpr const char* kSetLeaf = "UPDATE chats SET current_leaf_id = ?2, updated_ms = ?3 WHERE id = ?1";
constexpr const char* kTouchChat = "UPDATE chats SET updated_ms = ?2 WHERE id = ?1";
// Columns of a Message, with its position among siblings (same chat and parent;
// `IS` so that first messages, whose parent is NULL, are siblings too).
constexpr const char* kMessageColumns =
    "m.id, m.chat_id, m.parent_id, m.role, m.content, m.state, m.created_ms,"
    " (SELECT count(*) FROM messages s WHERE s.chat_id = m.chat_id AND s.parent_id IS m.parent_id AND s.id <= m.id),"
    " (SELECT count(*) FROM messages s WHERE s.chat_id = m.chat_id AND s.parent_id IS m.parent_id)";
constexpr const char* kGetMessage = "FROM messages m WHERE m.id = ?1";
constexpr const char* kListMessages = "FROM messages m WHERE m.chat_id = ?1 ORDER BY m.id";
constexpr const char* kCurrentPath =
    "FROM (WITH RECURSIVE path(id, depth) AS ("
    "  SELECT current_leaf_id, 0 FROM chats WHERE id = ?1 AND current_leaf_id IS NOT NULL"
    "  UNION ALL"
    "  SELECT p.parent_id, path.depth + 1 FROM messages p JOIN path ON p.id = path.id WHERE p.parent_id IS NOT NULL)"
    " SELECT id, depth FROM path) AS path JOIN messages m ON m.id = path.id ORDER BY path.depth DESC";
constexpr const char* kSiblings =
    "SELECT s.id FROM messages s JOIN messages m ON m.id = ?1"
    " WHERE s.chat_id = m.chat_id AND s.parent_id IS m.parent_id ORDER BY s.id";
constexpr const char* kNewestChild = "SELECT max(id) FROM messages WHERE parent_id = ?1";
// A message and all its descendants, in one statement (see the note on parent_id in
// migrations.cpp); runs and traces follow by cascade, the chat's leaf is set NULL.
constexpr const char* kDeleteSubtree =
    "DELETE FROM messages WHERE id IN (WITH RECURSIVE sub(id) AS ("
    "  SELECT ?1 UNION ALL SELECT m.id FROM messages m JOIN sub ON m.parent_id = sub.id)"
    " SELECT id FROM sub)";
constexpr const char* kNewestSibling = "SELECT max(id) FROM messages WHERE chat_id = ?1 AND parent_id IS ?2";
constexpr const char* kAppendText = "UPDATE messages SET content = content || ?2 WHERE id = ?1 AND state = 'streaming'";
constexpr const char* kSetText = "UPDATE messages SET content = ?2 WHERE id = ?1 AND state = 'streaming'";
constexpr const char* kFinish = "UPDATE messages SET content = ?2, state = ?3 WHERE id = ?1 AND state = 'streaming'";

Message read_message(const Statement& s)
{
    Message m;
    m.id = s.column_int(0);
    m.chat_id = s.column_int(1);
    if (!s.is_null(2)) m.parent_id = s.column_int(2);
    m.role = role_from_string(s.column_text(3)).value_or(Role::User);
    m.content = s.column_text(4);
    m.state = message_state_from_string(s.column_text(5)).value_or(MessageState::Complete);
    m.created_ms = s.column_int(6);
    m.sibling_index = static_cast<int>(s.column_int(7));
    m.sibling_count = static_cast<int>(s.column_int(8));
    return m;
}

std::vector<Message> query_messages(Db& db, const char* tail, std::int64_t id)
{
    Statement s = db.prepare(std::string("SELECT ") + kMessageColumns + " " + tail);
    s.bind(1, id);
    std::vector<Message> out;
    while (s.step()) out.push_back(read_message(s));
    return out;
}

// The chat's current leaf; throws NotFound if the chat does not exist.
std::optional<MessageId> current_leaf(Db& db, ChatId chat)
{
    Statement s = db.prepare(kGetLeaf);
    s.bind(1, chat);
    if (!s.step()) throw_not_found("chat", chat);
    if (s.is_null(0)) return std::nullopt;
    return s.column_int(0);
}

void set_leaf(Db& db, ChatId chat, MessageId leaf)
{
    db.prepare(kSetLeaf).bind_all(chat, leaf, now_ms()).run();
}

Message require_message(Db& db, MessageId id)
{
    auto found = query_messages(db, kGetMessage, id);
    if (found.empty()) throw_not_found("message", id);
    return found.front();
}

// A streaming-text update touched no row: say whether the message is missing or done.
[[noreturn]] void explain_not_streaming(Db& db, MessageId id)
{
    const Message m = require_message(db, id);
    throw StorageError(ErrorKind::InvalidInput,
                       "message " + std::to_string(id) + " is " + to_string(m.state) + ", not a streaming reply");
}

}  // namespace

MessageId insert_message_row(Db& db, ChatId chat, std::optional<MessageId> parent, Role role,
                             const std::string& content, MessageState state, std::int64_t created_ms)
{
    Statement s = db.prepare(kInsertMessage);
    s.bind(1, chat);
    if (parent)
        s.bind(2, *parent);
    else
        s.bind_null(2);
    s.bind(3, to_string(role)).bind(4, content).bind(5, to_string(state)).bind(6, created_ms);
    s.run();
    return db.last_insert_rowid();
}

MessageId Store::append_message(ChatId chat, Role role, const std::string& content)
{
    require_writable("save a message");
    Db& db = m_state->db;
    Transaction tx(db);
    const auto parent = current_leaf(db, chat);
    const MessageId id = insert_message_row(db, chat, parent, role, content, MessageState::Complete, now_ms());
    set_leaf(db, chat, id);
    tx.commit();
    return id;
}

MessageId Store::edit_message(MessageId id, const std::string& content)
{
    require_writable("edit a message");
    Db& db = m_state->db;
    Transaction tx(db);
    const Message original = require_message(db, id);
    const MessageId edited = insert_message_row(db, original.chat_id, original.parent_id, original.role, content,
                                                MessageState::Complete, now_ms());
    set_leaf(db, original.chat_id, edited);
    tx.commit();
    return edited;
}

MessageId Store::begin_reply(ChatId chat, MessageId parent)
{
    require_writable("start a reply");
    Db& db = m_state->db;
    Transaction tx(db);
    current_leaf(db, chat);  // the chat must exist
    const Message p = require_message(db, parent);
    if (p.chat_id != chat)
        throw StorageError(ErrorKind::InvalidInput, "message " + std::to_string(parent) + " belongs to chat " +
                                                        std::to_string(p.chat_id) + ", not to chat " +
                                                        std::to_string(chat));
    const MessageId id = insert_message_row(db, chat, parent, Role::Assistant, "", MessageState::Streaming, now_ms());
    set_leaf(db, chat, id);
    tx.commit();
    return id;
}

void Store::append_reply_text(MessageId reply, std::string_view delta)
{
    require_writable("save a reply");
    Db& db = m_state->db;
    db.prepare(kAppendText).bind_all(reply, delta).run();
    if (db.changes() != 1) explain_not_streaming(db, reply);
}

void Store::set_reply_text(MessageId reply, const std::string& text)
{
    require_writable("save a reply");
    Db& db = m_state->db;
    db.prepare(kSetText).bind_all(reply, text).run();
    if (db.changes() != 1) explain_not_streaming(db, reply);
}

RunId Store::finish_reply(MessageId reply, const std::string& text, MessageState state, const RunRecord& run,
                          const RoutingTrace* trace)
{
    require_writable("finish a reply");
    if (state != MessageState::Complete && state != MessageState::Stopped && state != MessageState::Failed)
        throw StorageError(ErrorKind::InvalidInput, std::string("a reply cannot finish in state '") + to_string(state) +
                                                        "' (expected complete, stopped or failed)");
    // Encode before the transaction: a bad trace must not cost the reply's text.
    std::vector<std::uint8_t> blob;
    if (trace) blob = encode_trace(*trace);
    Db& db = m_state->db;
    Transaction tx(db);
    db.prepare(kFinish).bind_all(reply, text, to_string(state)).run();
    if (db.changes() != 1) explain_not_streaming(db, reply);
    const RunId run_id = insert_run_row(db, reply, run);
    if (trace) insert_trace_row(db, run_id, blob, static_cast<std::uint32_t>(trace->n_tokens()));
    const Message m = require_message(db, reply);
    db.prepare(kTouchChat).bind_all(m.chat_id, now_ms()).run();
    tx.commit();
    return run_id;
}

std::optional<Message> Store::get_message(MessageId id)
{
    auto found = query_messages(m_state->db, kGetMessage, id);
    if (found.empty()) return std::nullopt;
    return found.front();
}

std::vector<Message> Store::load_current_path(ChatId chat)
{
    current_leaf(m_state->db, chat);  // NotFound for a missing chat, not an empty path
    return query_messages(m_state->db, kCurrentPath, chat);
}

std::vector<Message> Store::list_messages(ChatId chat)
{
    current_leaf(m_state->db, chat);
    return query_messages(m_state->db, kListMessages, chat);
}

std::vector<MessageId> Store::list_siblings(MessageId id)
{
    Statement s = m_state->db.prepare(kSiblings);
    s.bind(1, id);
    std::vector<MessageId> ids;
    while (s.step()) ids.push_back(s.column_int(0));
    if (ids.empty()) throw_not_found("message", id);
    return ids;
}

namespace {

// The end of the newest line of replies below `id` (or `id` itself).
MessageId newest_leaf_below(Db& db, MessageId id)
{
    MessageId leaf = id;
    Statement child = db.prepare(kNewestChild);
    for (;;) {
        child.reset();
        child.bind(1, leaf);
        if (!child.step() || child.is_null(0)) return leaf;
        leaf = child.column_int(0);
    }
}

}  // namespace

void Store::select_branch(MessageId id)
{
    require_writable("switch branches");
    Db& db = m_state->db;
    Transaction tx(db);
    const Message m = require_message(db, id);
    set_leaf(db, m.chat_id, newest_leaf_below(db, id));
    tx.commit();
}

void Store::delete_branch(MessageId id)
{
    require_writable("delete messages");
    Db& db = m_state->db;
    {
        Transaction tx(db);
        const Message m = require_message(db, id);
        db.prepare(kDeleteSubtree).bind(1, id).run();
        if (!current_leaf(db, m.chat_id)) {
            // The branch on screen was deleted: show a sibling's, else the parent's.
            Statement sibling = db.prepare(kNewestSibling);
            sibling.bind(1, m.chat_id);
            if (m.parent_id)
                sibling.bind(2, *m.parent_id);
            else
                sibling.bind_null(2);
            std::optional<MessageId> next = m.parent_id;
            if (sibling.step() && !sibling.is_null(0)) next = sibling.column_int(0);
            if (next)
                set_leaf(db, m.chat_id, newest_leaf_below(db, *next));
            else
                db.prepare(kTouchChat).bind_all(m.chat_id, now_ms()).run();
        }
        db.exec(kOptimizeSearch);
        tx.commit();
    }
    scrub_wal(db);
}

}  // namespace moelens::storage
