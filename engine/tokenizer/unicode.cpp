#include "tokenizer/unicode.h"

#include <array>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "tokenizer/unicode_tables.h"

namespace moelens::tokenizer::unicode {
namespace {

// Two-stage table expanded from the generated runs: stage1 maps each 256-code-point
// block to a deduplicated 256-byte block in stage2 (about 100 KB in all).
struct PropertyTable {
    std::array<std::uint16_t, 0x1100> stage1{};
    std::vector<std::uint8_t> stage2;

    PropertyTable()
    {
        std::vector<std::uint8_t> flat(0x110000);
        for (std::size_t r = 0; r < kUnicodeRunCount; ++r) {
            const std::uint32_t end = r + 1 < kUnicodeRunCount ? kUnicodeRuns[r + 1].first : 0x110000;
            std::memset(flat.data() + kUnicodeRuns[r].first, kUnicodeRuns[r].value, end - kUnicodeRuns[r].first);
        }
        std::map<std::string, std::uint16_t> blocks;
        for (std::size_t b = 0; b < stage1.size(); ++b) {
            const std::string block(reinterpret_cast<const char*>(flat.data()) + b * 256, 256);
            auto [it, inserted] = blocks.emplace(block, static_cast<std::uint16_t>(blocks.size()));
            if (inserted) stage2.insert(stage2.end(), block.begin(), block.end());
            stage1[b] = it->second;
        }
    }
};

const PropertyTable& property_table()
{
    static const PropertyTable table;
    return table;
}

}  // namespace

std::uint8_t property_value(char32_t cp)
{
    if (cp >= 0x110000) return 0;
    const PropertyTable& t = property_table();
    return t.stage2[static_cast<std::size_t>(t.stage1[cp >> 8]) * 256 + (cp & 0xFF)];
}

std::uint32_t category_mask_for_name(std::string_view name)
{
    using GC = GeneralCategory;
    struct Entry {
        const char* short_name;
        const char* long_name;
        std::uint32_t mask;
    };
    static const Entry kEntries[] = {
        {"L", "Letter", kLetterMask}, {"M", "Mark", kMarkMask}, {"N", "Number", kNumberMask},
        {"P", "Punctuation", kPunctuationMask}, {"S", "Symbol", kSymbolMask}, {"Z", "Separator", kSeparatorMask},
        {"C", "Other", kOtherMask},
        {"Lu", "Uppercase_Letter", category_bit(GC::Lu)}, {"Ll", "Lowercase_Letter", category_bit(GC::Ll)},
        {"Lt", "Titlecase_Letter", category_bit(GC::Lt)}, {"Lm", "Modifier_Letter", category_bit(GC::Lm)},
        {"Lo", "Other_Letter", category_bit(GC::Lo)}, {"Mn", "Nonspacing_Mark", category_bit(GC::Mn)},
        {"Mc", "Spacing_Mark", category_bit(GC::Mc)}, {"Me", "Enclosing_Mark", category_bit(GC::Me)},
        {"Nd", "Decimal_Number", category_bit(GC::Nd)}, {"Nl", "Letter_Number", category_bit(GC::Nl)},
        {"No", "Other_Number", category_bit(GC::No)}, {"Pc", "Connector_Punctuation", category_bit(GC::Pc)},
        {"Pd", "Dash_Punctuation", category_bit(GC::Pd)}, {"Ps", "Open_Punctuation", category_bit(GC::Ps)},
        {"Pe", "Close_Punctuation", category_bit(GC::Pe)}, {"Pi", "Initial_Punctuation", category_bit(GC::Pi)},
        {"Pf", "Final_Punctuation", category_bit(GC::Pf)}, {"Po", "Other_Punctuation", category_bit(GC::Po)},
        {"Sm", "Math_Symbol", category_bit(GC::Sm)}, {"Sc", "Currency_Symbol", category_bit(GC::Sc)},
        {"Sk", "Modifier_Symbol", category_bit(GC::Sk)}, {"So", "Other_Symbol", category_bit(GC::So)},
        {"Zs", "Space_Separator", category_bit(GC::Zs)}, {"Zl", "Line_Separator", category_bit(GC::Zl)},
        {"Zp", "Paragraph_Separator", category_bit(GC::Zp)}, {"Cc", "Control", category_bit(GC::Cc)},
        {"Cf", "Format", category_bit(GC::Cf)}, {"Cs", "Surrogate", category_bit(GC::Cs)},
        {"Co", "Private_Use", category_bit(GC::Co)}, {"Cn", "Unassigned", category_bit(GC::Cn)},
    };
    for (const Entry& e : kEntries)
        if (name == e.short_name || name == e.long_name) return e.mask;
    return 0;
}

void append_utf8(std::string& out, char32_t cp)
{
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

namespace {

// Length of the valid UTF-8 sequence at s[i], 0 if the bytes there are invalid
// (then `subpart` is the length of the maximal invalid subpart, at least 1), or
// -1 if a valid prefix is cut off by the end of s.
int sequence_length(std::string_view s, std::size_t i, std::size_t& subpart)
{
    const auto b0 = static_cast<unsigned char>(s[i]);
    subpart = 1;
    if (b0 < 0x80) return 1;
    int need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 1;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 2;
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 3;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    for (int k = 1; k <= need; ++k) {
        if (i + k >= s.size()) return -1;
        const auto b = static_cast<unsigned char>(s[i + k]);
        if (b < lo || b > hi) {
            subpart = static_cast<std::size_t>(k);
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return need + 1;
}

}  // namespace

std::size_t find_invalid_utf8(std::string_view s)
{
    std::size_t i = 0;
    while (i < s.size()) {
        if (static_cast<unsigned char>(s[i]) < 0x80) {
            ++i;
            continue;
        }
        std::size_t subpart;
        const int n = sequence_length(s, i, subpart);
        if (n <= 0) return i;
        i += static_cast<std::size_t>(n);
    }
    return s.size();
}

std::string decode_utf8_lossy(std::string_view bytes, bool complete, std::size_t* consumed)
{
    std::string out;
    out.reserve(bytes.size());
    std::size_t i = 0;
    while (i < bytes.size()) {
        std::size_t subpart;
        const int n = sequence_length(bytes, i, subpart);
        if (n > 0) {
            out.append(bytes.substr(i, static_cast<std::size_t>(n)));
            i += static_cast<std::size_t>(n);
        } else if (n == 0) {
            out.append("\xEF\xBF\xBD");
            i += subpart;
        } else {
            if (!complete) break;
            // A truncated but otherwise valid sequence is one maximal subpart.
            out.append("\xEF\xBF\xBD");
            i = bytes.size();
        }
    }
    if (consumed) *consumed = i;
    return out;
}

}  // namespace moelens::tokenizer::unicode
