#include "moelens/tokenizer.h"
#include "tokenizer/unicode.h"

namespace moelens {

StreamingDetokenizer::StreamingDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens)
    : m_tokenizer(tokenizer), m_skip_special(skip_special_tokens)
{
}

std::string StreamingDetokenizer::push(std::uint32_t id)
{
    if (!m_tokenizer.is_known(id)) return {};
    if (m_skip_special && m_tokenizer.is_special(id)) return {};
    m_pending += m_tokenizer.token_to_piece(id);
    // Lossy decoding is prefix-stable except for a truncated character at the end,
    // which waits here for its remaining bytes.
    std::size_t consumed = 0;
    std::string out = tokenizer::unicode::decode_utf8_lossy(m_pending, false, &consumed);
    m_pending.erase(0, consumed);
    return out;
}

std::string StreamingDetokenizer::finish()
{
    std::string out = tokenizer::unicode::decode_utf8_lossy(m_pending);
    m_pending.clear();
    return out;
}

}  // namespace moelens
