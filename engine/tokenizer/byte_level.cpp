#include "tokenizer/byte_level.h"

#include "tokenizer/unicode.h"

namespace moelens::tokenizer::byte_level {
namespace {

struct Tables {
    std::array<char32_t, 256> to_char{};
    std::array<std::string, 256> to_utf8;
    std::array<std::int16_t, 512> from_char{};  // every alphabet code point is < 0x144

    Tables()
    {
        from_char.fill(-1);
        // Printable Latin-1 bytes stand for themselves; the rest are shifted to 256+.
        int shifted = 0;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            to_char[b] = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + shifted++);
            unicode::append_utf8(to_utf8[b], to_char[b]);
            from_char[to_char[b]] = static_cast<std::int16_t>(b);
        }
    }
};

const Tables& tables()
{
    static const Tables t;
    return t;
}

}  // namespace

char32_t byte_to_char(std::uint8_t b) { return tables().to_char[b]; }

const std::array<std::string, 256>& byte_to_utf8() { return tables().to_utf8; }

bool token_to_bytes(std::string_view token, std::string& out)
{
    if (unicode::find_invalid_utf8(token) != token.size()) return false;
    const Tables& t = tables();
    std::size_t i = 0;
    while (i < token.size()) {
        const char32_t cp = unicode::decode_utf8(token, i);
        if (cp >= t.from_char.size() || t.from_char[cp] < 0) return false;
        out.push_back(static_cast<char>(t.from_char[cp]));
    }
    return true;
}

std::string bytes_to_token(std::string_view bytes)
{
    std::string out;
    for (char c : bytes) out += tables().to_utf8[static_cast<std::uint8_t>(c)];
    return out;
}

}  // namespace moelens::tokenizer::byte_level
