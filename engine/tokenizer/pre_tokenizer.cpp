#include "tokenizer/pre_tokenizer.h"

#include "tokenizer/unicode.h"

namespace moelens::tokenizer {
namespace {

struct Span {
    std::uint32_t begin, end;
    bool is_match;
};

// Applies the split behaviour to the alternating match/gap spans of one piece,
// following tokenizers' NormalizedString::split.
void apply_behavior(const std::vector<Span>& spans, SplitBehavior behavior, bool invert, std::vector<Piece>& out)
{
    const std::size_t first = out.size();
    auto push = [&](std::uint32_t b, std::uint32_t e) { out.push_back({b, e}); };
    switch (behavior) {
    case SplitBehavior::Isolated:
        for (const Span& s : spans) push(s.begin, s.end);
        break;
    case SplitBehavior::Removed:
        for (const Span& s : spans)
            if (s.is_match == invert) push(s.begin, s.end);
        break;
    case SplitBehavior::MergedWithPrevious: {
        bool previous_match = false;
        for (const Span& s : spans) {
            const bool m = s.is_match != invert;
            if (m && !previous_match && out.size() > first) out.back().end = s.end;
            else push(s.begin, s.end);
            previous_match = m;
        }
        break;
    }
    case SplitBehavior::MergedWithNext: {
        bool previous_match = false;
        std::vector<Piece> rev;
        for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
            const bool m = it->is_match != invert;
            if (m && !previous_match && !rev.empty()) rev.back().begin = it->begin;
            else rev.push_back({it->begin, it->end});
            previous_match = m;
        }
        out.insert(out.end(), rev.rbegin(), rev.rend());
        break;
    }
    case SplitBehavior::Contiguous: {
        bool previous_match = false;
        for (const Span& s : spans) {
            const bool m = s.is_match != invert;
            if (m == previous_match && out.size() > first) out.back().end = s.end;
            else push(s.begin, s.end);
            previous_match = m;
        }
        break;
    }
    }
    // Empty pieces (from empty matches) vanish, as in the reference.
    std::size_t w = first;
    for (std::size_t r = first; r < out.size(); ++r)
        if (out[r].end > out[r].begin) out[w++] = out[r];
    out.resize(w);
}

class RegexSplit final : public PreTokenizerStep {
public:
    RegexSplit(std::string_view pattern, SplitBehavior behavior, bool invert)
        : m_regex(pattern), m_behavior(behavior), m_invert(invert)
    {
    }

    void split(std::string_view text, Piece piece, std::vector<Piece>& out) const override
    {
        const std::string_view subject = text.substr(piece.begin, piece.end - piece.begin);
        thread_local std::vector<Span> spans;
        spans.clear();
        std::size_t prev = 0, from = 0;
        std::size_t b, e;
        while (from <= subject.size() && m_regex.search(subject, from, b, e)) {
            if (b > prev) spans.push_back({piece.begin + as_u32(prev), piece.begin + as_u32(b), false});
            spans.push_back({piece.begin + as_u32(b), piece.begin + as_u32(e), true});
            prev = e;
            if (e > b) {
                from = e;
            } else {
                // An empty match: continue one code point later.
                if (e >= subject.size()) break;
                from = e;
                unicode::decode_utf8(subject, from);
            }
        }
        if (prev < subject.size()) spans.push_back({piece.begin + as_u32(prev), piece.end, false});
        if (m_behavior == SplitBehavior::Isolated) {
            for (const Span& s : spans)
                if (s.end > s.begin) out.push_back({s.begin, s.end});
            return;
        }
        apply_behavior(spans, m_behavior, m_invert, out);
    }

private:
    static std::uint32_t as_u32(std::size_t v) { return static_cast<std::uint32_t>(v); }

    Regex m_regex;
    SplitBehavior m_behavior;
    bool m_invert;
};

class StringSplit final : public PreTokenizerStep {
public:
    StringSplit(std::string literal, SplitBehavior behavior, bool invert)
        : m_literal(std::move(literal)), m_behavior(behavior), m_invert(invert)
    {
    }

    void split(std::string_view text, Piece piece, std::vector<Piece>& out) const override
    {
        std::vector<Span> spans;
        std::size_t prev = piece.begin;
        if (!m_literal.empty()) {
            std::size_t at = piece.begin;
            while ((at = text.find(m_literal, at)) != std::string_view::npos && at + m_literal.size() <= piece.end) {
                if (at > prev) spans.push_back({static_cast<std::uint32_t>(prev), static_cast<std::uint32_t>(at), false});
                spans.push_back({static_cast<std::uint32_t>(at), static_cast<std::uint32_t>(at + m_literal.size()), true});
                at += m_literal.size();
                prev = at;
            }
        }
        if (prev < piece.end) spans.push_back({static_cast<std::uint32_t>(prev), piece.end, false});
        apply_behavior(spans, m_behavior, m_invert, out);
    }

private:
    std::string m_literal;
    SplitBehavior m_behavior;
    bool m_invert;
};

class Digits final : public PreTokenizerStep {
public:
    explicit Digits(bool individual) : m_individual(individual) {}

    void split(std::string_view text, Piece piece, std::vector<Piece>& out) const override
    {
        // Each numeric character is a match of its own; gaps are one span.
        std::vector<Span> spans;
        std::size_t last = piece.begin;
        std::size_t i = piece.begin;
        while (i < piece.end) {
            const std::size_t at = i;
            const char32_t cp = unicode::decode_utf8(text, i);
            if (!(unicode::category_bit(unicode::general_category(cp)) & unicode::kNumberMask)) continue;
            if (at > last) spans.push_back({static_cast<std::uint32_t>(last), static_cast<std::uint32_t>(at), false});
            spans.push_back({static_cast<std::uint32_t>(at), static_cast<std::uint32_t>(i), true});
            last = i;
        }
        if (last < piece.end) spans.push_back({static_cast<std::uint32_t>(last), piece.end, false});
        apply_behavior(spans, m_individual ? SplitBehavior::Isolated : SplitBehavior::Contiguous, false, out);
    }

private:
    bool m_individual;
};

}  // namespace

std::unique_ptr<PreTokenizerStep> make_regex_split(std::string_view pattern, SplitBehavior behavior, bool invert)
{
    return std::make_unique<RegexSplit>(pattern, behavior, invert);
}

std::unique_ptr<PreTokenizerStep> make_string_split(std::string literal, SplitBehavior behavior, bool invert)
{
    return std::make_unique<StringSplit>(std::move(literal), behavior, invert);
}

std::unique_ptr<PreTokenizerStep> make_digits(bool individual_digits)
{
    return std::make_unique<Digits>(individual_digits);
}

void PreTokenizer::run(std::string_view text, std::vector<Piece>& pieces) const
{
    pieces.clear();
    if (text.empty()) return;
    pieces.push_back({0, static_cast<std::uint32_t>(text.size())});
    thread_local std::vector<Piece> next;
    for (const auto& step : m_steps) {
        next.clear();
        for (const Piece& p : pieces) step->split(text, p, next);
        pieces.swap(next);
    }
}

}  // namespace moelens::tokenizer
