// Store: full-text search over messages (FTS5, see migration 2).
#include "store_state.h"

namespace moelens::storage {

namespace {

// snippet(): column 0, the match markers, an ellipsis, and about 12 tokens of context.
constexpr const char* kSearch =
    "SELECT m.id, m.chat_id, c.title, m.role, snippet(messages_fts, 0, char(2), char(3), '…', 12), m.created_ms"
    " FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid JOIN chats c ON c.id = m.chat_id"
    " WHERE messages_fts MATCH ?1 ORDER BY rank LIMIT ?2";

// Turns what the user typed into an FTS5 query that cannot be a syntax error: every
// word becomes a quoted string (quotes doubled) and a prefix ("maple" finds "maples",
// and results appear while typing); all words must match.
std::string to_fts_query(const std::string& text)
{
    std::vector<std::string> words;
    std::string word;
    for (char c : text) {
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            if (!word.empty()) words.push_back(std::move(word));
            word.clear();
        } else {
            word += c;
        }
    }
    if (!word.empty()) words.push_back(std::move(word));
    std::string query;
    for (std::size_t i = 0; i < words.size(); ++i) {
        if (i) query += ' ';
        query += '"';
        for (char c : words[i]) {
            if (c == '"') query += '"';
            query += c;
        }
        query += "\"*";
    }
    return query;
}

}  // namespace

std::vector<SearchHit> Store::search(const std::string& query, int limit)
{
    const std::string fts = to_fts_query(query);
    std::vector<SearchHit> hits;
    if (fts.empty()) return hits;
    Statement s = m_state->db.prepare(kSearch);
    s.bind(1, fts).bind(2, limit);
    while (s.step()) {
        SearchHit h;
        h.message_id = s.column_int(0);
        h.chat_id = s.column_int(1);
        h.chat_title = s.column_text(2);
        h.role = role_from_string(s.column_text(3)).value_or(Role::User);
        h.snippet = s.column_text(4);
        h.created_ms = s.column_int(5);
        hits.push_back(std::move(h));
    }
    return hits;
}

}  // namespace moelens::storage
