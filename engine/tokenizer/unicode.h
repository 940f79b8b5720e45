#pragma once
// Unicode 16.0 general categories and White_Space, and UTF-8 helpers for the
// tokenizer. Tables come from unicode_tables.cpp (generated, see tools/unicode/).
#include <cstdint>
#include <string>
#include <string_view>

namespace moelens::tokenizer::unicode {

// Order fixed by tools/unicode/gen_unicode_tables.mjs.
enum class GeneralCategory : std::uint8_t {
    Cn, Lu, Ll, Lt, Lm, Lo, Mn, Mc, Me, Nd, Nl, No, Pc, Pd, Ps, Pe, Pi, Pf, Po,
    Sm, Sc, Sk, So, Zs, Zl, Zp, Cc, Cf, Cs, Co,
};
inline constexpr int kCategoryCount = 30;
inline constexpr std::uint8_t kWhiteSpaceFlag = 0x20;

// Category masks: bit (1 << category) for each category in the group.
inline constexpr std::uint32_t category_bit(GeneralCategory c) { return 1u << static_cast<unsigned>(c); }
inline constexpr std::uint32_t kLetterMask = category_bit(GeneralCategory::Lu) | category_bit(GeneralCategory::Ll) |
    category_bit(GeneralCategory::Lt) | category_bit(GeneralCategory::Lm) | category_bit(GeneralCategory::Lo);
inline constexpr std::uint32_t kMarkMask =
    category_bit(GeneralCategory::Mn) | category_bit(GeneralCategory::Mc) | category_bit(GeneralCategory::Me);
inline constexpr std::uint32_t kNumberMask =
    category_bit(GeneralCategory::Nd) | category_bit(GeneralCategory::Nl) | category_bit(GeneralCategory::No);
inline constexpr std::uint32_t kPunctuationMask = category_bit(GeneralCategory::Pc) |
    category_bit(GeneralCategory::Pd) | category_bit(GeneralCategory::Ps) | category_bit(GeneralCategory::Pe) |
    category_bit(GeneralCategory::Pi) | category_bit(GeneralCategory::Pf) | category_bit(GeneralCategory::Po);
inline constexpr std::uint32_t kSymbolMask = category_bit(GeneralCategory::Sm) | category_bit(GeneralCategory::Sc) |
    category_bit(GeneralCategory::Sk) | category_bit(GeneralCategory::So);
inline constexpr std::uint32_t kSeparatorMask = category_bit(GeneralCategory::Zs) |
    category_bit(GeneralCategory::Zl) | category_bit(GeneralCategory::Zp);
inline constexpr std::uint32_t kOtherMask = category_bit(GeneralCategory::Cn) | category_bit(GeneralCategory::Cc) |
    category_bit(GeneralCategory::Cf) | category_bit(GeneralCategory::Cs) | category_bit(GeneralCategory::Co);

// Raw table value: category in the low 5 bits, kWhiteSpaceFlag.
std::uint8_t property_value(char32_t cp);

inline GeneralCategory general_category(char32_t cp)
{
    return static_cast<GeneralCategory>(property_value(cp) & 0x1f);
}
inline bool is_white_space(char32_t cp) { return (property_value(cp) & kWhiteSpaceFlag) != 0; }

// Category mask for a property name as written in \p{...}: one- or two-letter
// general category (L, Lu, N, Nd, ...) or its long name (Letter, Uppercase_Letter).
// Returns 0 for unknown names.
std::uint32_t category_mask_for_name(std::string_view name);

// Decodes one code point of valid UTF-8 at s[i] (the tokenizer's input is validated
// once on entry) and advances i.
inline char32_t decode_utf8(std::string_view s, std::size_t& i)
{
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
        ++i;
        return b0;
    }
    if (b0 < 0xE0) {
        const char32_t cp = ((b0 & 0x1Fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu);
        i += 2;
        return cp;
    }
    if (b0 < 0xF0) {
        const char32_t cp = ((b0 & 0x0Fu) << 12) | ((static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 6) |
                            (static_cast<unsigned char>(s[i + 2]) & 0x3Fu);
        i += 3;
        return cp;
    }
    const char32_t cp = ((b0 & 0x07u) << 18) | ((static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 12) |
                        ((static_cast<unsigned char>(s[i + 2]) & 0x3Fu) << 6) |
                        (static_cast<unsigned char>(s[i + 3]) & 0x3Fu);
    i += 4;
    return cp;
}

void append_utf8(std::string& out, char32_t cp);

// Index of the first byte that is not part of valid UTF-8, or s.size().
std::size_t find_invalid_utf8(std::string_view s);

// Rust String::from_utf8_lossy / WHATWG semantics: each maximal invalid subsequence
// becomes one U+FFFD. With `complete == false` a valid-but-truncated sequence at the
// end is left unconsumed; `consumed` receives how many bytes were decoded.
std::string decode_utf8_lossy(std::string_view bytes, bool complete = true, std::size_t* consumed = nullptr);

}  // namespace moelens::tokenizer::unicode
