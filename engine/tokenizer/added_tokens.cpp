#include "tokenizer/added_tokens.h"

#include "tokenizer/unicode.h"

namespace moelens::tokenizer {
namespace {

bool is_word_char(char32_t cp)
{
    using unicode::GeneralCategory;
    const std::uint32_t bit = unicode::category_bit(unicode::general_category(cp));
    return (bit & (unicode::kLetterMask | unicode::kMarkMask | unicode::category_bit(GeneralCategory::Nd) |
                   unicode::category_bit(GeneralCategory::Pc))) != 0;
}

// Code point ending at byte `pos` (exclusive) of valid UTF-8.
char32_t cp_before(std::string_view s, std::size_t pos, std::size_t& start)
{
    start = pos - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    std::size_t i = start;
    return unicode::decode_utf8(s, i);
}

}  // namespace

void AddedTokenMatcher::build(const std::vector<AddedToken>& tokens, bool normalized)
{
    m_nodes.assign(1, Node{});
    m_tokens.clear();
    for (const AddedToken& t : tokens) {
        if (t.normalized != normalized || t.content.empty()) continue;
        std::uint32_t node = 0;
        for (char c : t.content) {
            const auto b = static_cast<unsigned char>(c);
            std::uint32_t next = child(node, b);
            if (next == 0) {
                next = static_cast<std::uint32_t>(m_nodes.size());
                m_nodes[node].children.push_back({b, next});
                m_nodes.emplace_back();
            }
            node = next;
        }
        m_first_byte[static_cast<unsigned char>(t.content[0])] = true;
        if (m_nodes[node].token < 0) {
            m_nodes[node].token = static_cast<std::int32_t>(m_tokens.size());
            m_tokens.push_back(t);
        }
    }
}

std::uint32_t AddedTokenMatcher::child(std::uint32_t node, unsigned char b) const
{
    for (const auto& [byte, index] : m_nodes[node].children)
        if (byte == b) return index;
    return 0;
}

void AddedTokenMatcher::split(std::string_view text, std::size_t begin, std::size_t end,
                              std::vector<Segment>& out) const
{
    std::size_t start_offset = begin;
    std::size_t pos = begin;
    while (pos < end) {
        if (!m_first_byte[static_cast<unsigned char>(text[pos])]) {
            ++pos;
            continue;
        }
        // Longest token starting at pos.
        std::int32_t found = -1;
        std::size_t found_end = pos;
        std::uint32_t node = 0;
        for (std::size_t i = pos; i < end; ++i) {
            node = child(node, static_cast<unsigned char>(text[i]));
            if (node == 0) break;
            if (m_nodes[node].token >= 0) {
                found = m_nodes[node].token;
                found_end = i + 1;
            }
        }
        if (found < 0) {
            ++pos;
            continue;
        }
        const AddedToken& t = m_tokens[static_cast<std::size_t>(found)];
        std::size_t start = pos, stop = found_end;
        pos = found_end;  // a rejected match is not searched again for shorter tokens
        if (t.single_word) {
            std::size_t cs;
            const bool word_before = start > begin && is_word_char(cp_before(text, start, cs));
            std::size_t i = stop;
            const bool word_after = stop < end && is_word_char(unicode::decode_utf8(text, i));
            if (word_before || word_after) continue;
        }
        if (t.lstrip) {
            std::size_t cs;
            while (start > start_offset && unicode::is_white_space(cp_before(text, start, cs))) start = cs;
        }
        if (t.rstrip) {
            while (stop < end) {
                std::size_t i = stop;
                if (!unicode::is_white_space(unicode::decode_utf8(text, i))) break;
                stop = i;
            }
            pos = stop;
        }
        if (start > start_offset) out.push_back({start_offset, start, 0, false});
        out.push_back({start, stop, t.id, true});
        start_offset = stop;
    }
    if (end > start_offset) out.push_back({start_offset, end, 0, false});
}

}  // namespace moelens::tokenizer
