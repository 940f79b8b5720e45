#pragma once
// A small backtracking regex engine over code points, for the subset of Oniguruma
// (Ruby syntax) that Hugging Face tokenizer.json pre-tokenizers use:
//   alternation, (...), (?:...), (?=...), (?!...), greedy and lazy * + ? {n} {n,} {n,m},
//   classes [...] [^...] with ranges, \p{..} \P{..} (general categories), \s \S \d \D \w \W,
//   . ^ $ \A \z \Z, escapes \n \r \t \f \v \e \a \xHH \x{H..} \uHHHH.
// Categories and White_Space come from the Unicode 16 tables (unicode.h), as in the
// reference implementation. Anything else (look-behind, back-references, (?i), atomic
// groups, possessive quantifiers, nested classes, \b) is refused at construction with
// a TokenizerError naming the feature and its offset.
//
// Why not PCRE2: the system PCRE2 knows Unicode 14 and treats U+180E as \s; the
// reference uses Unicode 16 (see docs/tokenizer.md).
//
// Matching is leftmost-first with backtracking (Perl semantics). A step budget
// proportional to the subject length bounds catastrophic patterns: exceeding it
// throws TokenizerError instead of hanging.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moelens::tokenizer {

class CharSet {
public:
    bool contains(char32_t cp) const
    {
        if (cp < 0x10000) return (m_bmp[cp >> 6] >> (cp & 63)) & 1;
        return contains_slow(cp);
    }

    // Building blocks, united; negate() applies to the union.
    void add_range(char32_t lo, char32_t hi) { m_ranges.push_back({lo, hi}); }
    void add_categories(std::uint32_t mask, bool negated);
    void add_white_space(bool negated) { (negated ? m_not_white_space : m_white_space) = true; }
    void add_any_but_newline() { m_any_but_newline = true; }
    void negate() { m_negated = !m_negated; }
    // Precomputes the BMP bitmap; call once after building.
    void finish();
    void unite_bitmap(std::array<std::uint64_t, 1024>& bmp) const;
    bool contains_slow(char32_t cp) const;

private:
    struct Range {
        char32_t lo, hi;
    };
    std::vector<Range> m_ranges;
    std::vector<std::uint32_t> m_category_masks;
    std::vector<std::uint32_t> m_negated_category_masks;
    bool m_white_space = false;
    bool m_not_white_space = false;
    bool m_any_but_newline = false;
    bool m_negated = false;
    std::array<std::uint64_t, 1024> m_bmp{};  // 65536 bits
};

class Regex {
public:
    // Throws TokenizerError("regex ...: <feature> at offset N") for syntax it does not support.
    explicit Regex(std::string_view pattern);

    // Leftmost match starting at or after byte offset `from` of `subject` (valid
    // UTF-8). Matches and look-aheads never see past the end of `subject`.
    bool search(std::string_view subject, std::size_t from, std::size_t& match_begin, std::size_t& match_end) const;

    const std::string& pattern() const { return m_pattern; }

    enum class Op : std::uint8_t {
        Set, RepeatGreedy, RepeatLazy, Split, Jump, LookAhead, NegLookAhead,
        LineStart, LineEnd, TextStart, TextEnd, TextEndOrFinalNewline, Match,
    };
    struct Inst {
        Op op;
        std::uint32_t a = 0;    // Set/Repeat: set index; Split: first branch; Jump: target; Look: body start
        std::uint32_t b = 0;    // Split: second branch; Look: instruction after the body
        std::uint32_t min = 0;  // Repeat bounds (max = UINT32_MAX for unbounded)
        std::uint32_t max = 0;
    };

private:
    struct Backtrack;
    bool run(std::uint32_t pc, std::string_view s, std::size_t pos, std::size_t& end, std::vector<Backtrack>& stack,
             std::uint64_t& steps, std::uint64_t budget) const;

    std::string m_pattern;
    std::vector<CharSet> m_sets;
    std::vector<Inst> m_program;
    // Code points that can start a match (when the pattern cannot match empty and
    // starts with no assertion): positions whose code point is outside are skipped.
    // Only the BMP is prefiltered; other code points always try the program.
    bool m_has_first_set = false;
    std::array<std::uint64_t, 1024> m_first_bmp{};

    friend class RegexCompiler;
};

}  // namespace moelens::tokenizer
