#include "tokenizer/regex.h"

#include <limits>
#include <memory>

#include <fmt/format.h>

#include "moelens/error.h"
#include "tokenizer/unicode.h"

namespace moelens::tokenizer {

// ---------------------------------------------------------------------------
// CharSet
// ---------------------------------------------------------------------------

void CharSet::add_categories(std::uint32_t mask, bool negated)
{
    (negated ? m_negated_category_masks : m_category_masks).push_back(mask);
}

bool CharSet::contains_slow(char32_t cp) const
{
    bool in = false;
    for (const Range& r : m_ranges)
        if (cp >= r.lo && cp <= r.hi) in = true;
    if (!in && (m_white_space || m_not_white_space)) {
        const bool ws = unicode::is_white_space(cp);
        in = (m_white_space && ws) || (m_not_white_space && !ws);
    }
    if (!in && m_any_but_newline) in = cp != U'\n';
    if (!in && (!m_category_masks.empty() || !m_negated_category_masks.empty())) {
        const std::uint32_t bit = unicode::category_bit(unicode::general_category(cp));
        for (std::uint32_t m : m_category_masks)
            if (m & bit) in = true;
        for (std::uint32_t m : m_negated_category_masks)
            if (!(m & bit)) in = true;
    }
    return in != m_negated;
}

void CharSet::finish()
{
    m_bmp.fill(0);
    for (char32_t cp = 0; cp < 0x10000; ++cp)
        if (contains_slow(cp)) m_bmp[cp >> 6] |= std::uint64_t{1} << (cp & 63);
}

void CharSet::unite_bitmap(std::array<std::uint64_t, 1024>& bmp) const
{
    for (std::size_t i = 0; i < bmp.size(); ++i) bmp[i] |= m_bmp[i];
}

// ---------------------------------------------------------------------------
// Parser: pattern -> syntax tree
// ---------------------------------------------------------------------------

namespace {

constexpr std::uint32_t kUnbounded = std::numeric_limits<std::uint32_t>::max();
constexpr int kMaxNesting = 100;
constexpr std::size_t kMaxProgram = 100000;

struct Node {
    enum Kind { Empty, Set, Concat, Alt, Repeat, Look, Assert } kind = Empty;
    std::vector<std::unique_ptr<Node>> children;
    std::uint32_t set = 0;
    std::uint32_t min = 0, max = 0;
    bool greedy = true;
    bool negative = false;       // Look
    Regex::Op assertion{};       // Assert
};
using NodePtr = std::unique_ptr<Node>;

}  // namespace

class RegexCompiler {
public:
    RegexCompiler(Regex& re, std::string_view pattern) : m_re(re), m_p(pattern) {}

    void compile()
    {
        if (unicode::find_invalid_utf8(m_p) != m_p.size()) fail("pattern is not valid UTF-8", 0);
        NodePtr root = parse_alt(0);
        if (m_i < m_p.size()) fail("unbalanced ')'", m_i);
        emit(*root);
        push({Regex::Op::Match});
        for (CharSet& s : m_re.m_sets) s.finish();
        compute_first_set(*root);
    }

private:
    [[noreturn]] void fail(const std::string& what, std::size_t at) const
    {
        throw TokenizerError(fmt::format("regex \"{}\": {} at offset {}", std::string(m_p), what, at));
    }

    bool at_end() const { return m_i >= m_p.size(); }
    char peek() const { return m_p[m_i]; }

    char32_t next_cp()
    {
        return unicode::decode_utf8(m_p, m_i);
    }

    std::uint32_t new_set(CharSet set)
    {
        m_re.m_sets.push_back(std::move(set));
        return static_cast<std::uint32_t>(m_re.m_sets.size() - 1);
    }

    static NodePtr make(Node::Kind kind)
    {
        auto n = std::make_unique<Node>();
        n->kind = kind;
        return n;
    }

    NodePtr set_node(CharSet set)
    {
        NodePtr n = make(Node::Set);
        n->set = new_set(std::move(set));
        return n;
    }

    NodePtr parse_alt(int depth)
    {
        if (depth > kMaxNesting) fail("groups nested too deeply", m_i);
        NodePtr alt = make(Node::Alt);
        alt->children.push_back(parse_concat(depth));
        while (!at_end() && peek() == '|') {
            ++m_i;
            alt->children.push_back(parse_concat(depth));
        }
        if (alt->children.size() == 1) return std::move(alt->children[0]);
        return alt;
    }

    NodePtr parse_concat(int depth)
    {
        NodePtr seq = make(Node::Concat);
        while (!at_end() && peek() != '|' && peek() != ')') {
            NodePtr atom = parse_atom(depth);
            seq->children.push_back(parse_quantifiers(std::move(atom)));
        }
        return seq;
    }

    // Parses {n}, {n,}, {,m}, {n,m} at m_i (which is at '{'); false if it is a literal brace.
    bool parse_braces(std::uint32_t& min, std::uint32_t& max)
    {
        std::size_t j = m_i + 1;
        auto number = [&](std::uint32_t& out) {
            std::size_t start = j;
            std::uint64_t v = 0;
            while (j < m_p.size() && m_p[j] >= '0' && m_p[j] <= '9') {
                v = v * 10 + static_cast<std::uint64_t>(m_p[j] - '0');
                if (v > 100000) fail("repeat count too large", start);
                ++j;
            }
            out = static_cast<std::uint32_t>(v);
            return j > start;
        };
        const bool has_min = number(min);
        if (j < m_p.size() && m_p[j] == '}') {
            if (!has_min) return false;
            max = min;
        } else if (j < m_p.size() && m_p[j] == ',') {
            ++j;
            const bool has_max = number(max);
            if (!has_min && !has_max) return false;
            if (!has_min) min = 0;
            if (!has_max) max = kUnbounded;
            if (j >= m_p.size() || m_p[j] != '}') return false;
        } else {
            return false;
        }
        if (max < min) fail("repeat bounds out of order", m_i);
        m_i = j + 1;
        return true;
    }

    NodePtr parse_quantifiers(NodePtr atom)
    {
        while (!at_end()) {
            std::uint32_t min, max;
            const std::size_t at = m_i;
            const char c = peek();
            if (c == '*') {
                min = 0, max = kUnbounded, ++m_i;
            } else if (c == '+') {
                min = 1, max = kUnbounded, ++m_i;
            } else if (c == '?') {
                min = 0, max = 1, ++m_i;
            } else if (c == '{') {
                if (!parse_braces(min, max)) return atom;
            } else {
                return atom;
            }
            if (atom->kind == Node::Look || atom->kind == Node::Assert || atom->kind == Node::Empty)
                fail("quantifier after an assertion or nothing", at);
            bool greedy = true;
            if (!at_end() && peek() == '?') {
                greedy = false;
                ++m_i;
            } else if (!at_end() && peek() == '+') {
                fail("possessive quantifier (unsupported)", m_i);
            }
            NodePtr rep = make(Node::Repeat);
            rep->min = min;
            rep->max = max;
            rep->greedy = greedy;
            rep->children.push_back(std::move(atom));
            atom = std::move(rep);
        }
        return atom;
    }

    NodePtr parse_atom(int depth)
    {
        const std::size_t at = m_i;
        const char c = peek();
        if (c == '(') {
            ++m_i;
            NodePtr body;
            if (!at_end() && peek() == '?') {
                ++m_i;
                const char k = at_end() ? '\0' : peek();
                if (k == ':') {
                    ++m_i;
                    body = parse_alt(depth + 1);
                } else if (k == '=' || k == '!') {
                    ++m_i;
                    NodePtr look = make(Node::Look);
                    look->negative = k == '!';
                    look->children.push_back(parse_alt(depth + 1));
                    body = std::move(look);
                } else if (k == '<' && m_i + 1 < m_p.size() && (m_p[m_i + 1] == '=' || m_p[m_i + 1] == '!')) {
                    fail("look-behind (unsupported)", at);
                } else if (k == '<' || k == '\'' || k == 'P') {
                    fail("named group (unsupported)", at);
                } else if (k == '>') {
                    fail("atomic group (unsupported)", at);
                } else if (k == '#') {
                    fail("comment group (unsupported)", at);
                } else {
                    fail("inline option group (?" + std::string(1, k) + " (unsupported)", at);
                }
            } else {
                body = parse_alt(depth + 1);  // capture groups: only the whole match is used
            }
            if (at_end() || peek() != ')') fail("missing ')'", at);
            ++m_i;
            return body;
        }
        if (c == ')') fail("unbalanced ')'", at);
        if (c == '*' || c == '+' || c == '?') fail("quantifier without a target", at);
        if (c == '[') return set_node(parse_class());
        if (c == '.') {
            ++m_i;
            CharSet s;
            s.add_any_but_newline();
            return set_node(std::move(s));
        }
        if (c == '^' || c == '$') {
            ++m_i;
            NodePtr a = make(Node::Assert);
            a->assertion = c == '^' ? Regex::Op::LineStart : Regex::Op::LineEnd;
            return a;
        }
        if (c == '\\') {
            if (m_i + 1 < m_p.size()) {
                const char e = m_p[m_i + 1];
                const Regex::Op ops[] = {Regex::Op::TextStart, Regex::Op::TextEnd, Regex::Op::TextEndOrFinalNewline};
                const char names[] = {'A', 'z', 'Z'};
                for (int k = 0; k < 3; ++k) {
                    if (e != names[k]) continue;
                    m_i += 2;
                    NodePtr a = make(Node::Assert);
                    a->assertion = ops[k];
                    return a;
                }
            }
            CharSet s;
            const long cp = parse_escape(s, false);
            if (cp >= 0) s.add_range(static_cast<char32_t>(cp), static_cast<char32_t>(cp));
            return set_node(std::move(s));
        }
        CharSet s;
        const char32_t cp = next_cp();
        s.add_range(cp, cp);
        return set_node(std::move(s));
    }

    std::uint32_t hex_digits(std::size_t count_min, std::size_t count_max, std::size_t at)
    {
        std::uint32_t v = 0;
        std::size_t n = 0;
        while (n < count_max && !at_end()) {
            const char h = peek();
            int d;
            if (h >= '0' && h <= '9') d = h - '0';
            else if (h >= 'a' && h <= 'f') d = h - 'a' + 10;
            else if (h >= 'A' && h <= 'F') d = h - 'A' + 10;
            else break;
            v = v * 16 + static_cast<std::uint32_t>(d);
            ++m_i;
            ++n;
        }
        if (n < count_min || v > 0x10FFFF) fail("bad hexadecimal escape", at);
        return v;
    }

    // Parses an escape at m_i ('\\'). Class escapes (\s, \p{..}, ...) are added to `s`
    // and give -1; single-character escapes give their code point (not added, so the
    // caller can use it as a range end).
    long parse_escape(CharSet& s, bool in_class)
    {
        const std::size_t at = m_i;
        ++m_i;
        if (at_end()) fail("trailing backslash", at);
        const char e = peek();
        ++m_i;
        auto literal = [](char32_t cp) { return static_cast<long>(cp); };
        switch (e) {
        case 's': s.add_white_space(false); return -1;
        case 'S': s.add_white_space(true); return -1;
        case 'd': s.add_categories(unicode::category_bit(unicode::GeneralCategory::Nd), false); return -1;
        case 'D': s.add_categories(unicode::category_bit(unicode::GeneralCategory::Nd), true); return -1;
        case 'w':
        case 'W': {
            // Oniguruma's Unicode \w: Letter, Mark, Decimal_Number, Connector_Punctuation.
            const std::uint32_t word = unicode::kLetterMask | unicode::kMarkMask |
                                       unicode::category_bit(unicode::GeneralCategory::Nd) |
                                       unicode::category_bit(unicode::GeneralCategory::Pc);
            s.add_categories(word, e == 'W');
            return -1;
        }
        case 'p':
        case 'P': {
            if (at_end() || peek() != '{') fail("\\p without {name}", at);
            const std::size_t close = m_p.find('}', m_i);
            if (close == std::string_view::npos) fail("unterminated \\p{", at);
            std::string_view name = m_p.substr(m_i + 1, close - m_i - 1);
            bool negated = e == 'P';
            if (!name.empty() && name[0] == '^') {
                negated = !negated;
                name.remove_prefix(1);
            }
            const std::uint32_t mask = unicode::category_mask_for_name(name);
            if (mask == 0) fail("unsupported property \\p{" + std::string(name) + "} (only general categories)", at);
            s.add_categories(mask, negated);
            m_i = close + 1;
            return -1;
        }
        case 'n': return literal(U'\n');
        case 'r': return literal(U'\r');
        case 't': return literal(U'\t');
        case 'f': return literal(U'\f');
        case 'v': return literal(U'\v');
        case 'a': return literal(U'\a');
        case 'e': return literal(U'\x1B');
        case 'x':
            if (!at_end() && peek() == '{') {
                ++m_i;
                const std::uint32_t v = hex_digits(1, 8, at);
                if (at_end() || peek() != '}') fail("unterminated \\x{", at);
                ++m_i;
                return literal(v);
            }
            return literal(hex_digits(1, 2, at));
        case 'u': return literal(hex_digits(4, 4, at));
        case 'b':
            if (in_class) return literal(U'\b');
            fail("word boundary \\b (unsupported)", at);
        default: break;
        }
        if ((e >= '0' && e <= '9') || e == 'k' || e == 'g') fail("back-reference or subroutine (unsupported)", at);
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z'))
            fail(std::string("escape \\") + e + " (unsupported)", at);
        // An escaped punctuation or other character stands for itself.
        m_i = at + 1;
        return literal(next_cp());
    }

    CharSet parse_class()
    {
        const std::size_t at = m_i;
        ++m_i;
        CharSet s;
        bool negated = false;
        if (!at_end() && peek() == '^') {
            negated = true;
            ++m_i;
        }
        bool first = true;
        for (;;) {
            if (at_end()) fail("unterminated character class", at);
            const char c = peek();
            if (c == ']' && !first) {
                ++m_i;
                break;
            }
            first = false;
            if (c == '[') fail("nested class or POSIX bracket (unsupported)", m_i);
            if (c == '&' && m_i + 1 < m_p.size() && m_p[m_i + 1] == '&')
                fail("class intersection && (unsupported)", m_i);
            long lo;
            if (c == '\\') {
                lo = parse_escape(s, true);
                if (lo < 0) continue;
            } else {
                lo = static_cast<long>(next_cp());
            }
            // A range a-b (a '-' before ']' is a literal).
            if (m_i + 1 < m_p.size() && peek() == '-' && m_p[m_i + 1] != ']') {
                const std::size_t dash = m_i;
                ++m_i;
                long hi;
                if (peek() == '\\') {
                    hi = parse_escape(s, true);
                    if (hi < 0) fail("class escape as range end", dash);
                } else if (peek() == '[') {
                    fail("nested class (unsupported)", m_i);
                } else {
                    hi = static_cast<long>(next_cp());
                }
                if (hi < lo) fail("range out of order", dash);
                s.add_range(static_cast<char32_t>(lo), static_cast<char32_t>(hi));
            } else {
                s.add_range(static_cast<char32_t>(lo), static_cast<char32_t>(lo));
            }
        }
        if (negated) s.negate();
        return s;
    }

    // ---- code generation -------------------------------------------------

    std::uint32_t push(Regex::Inst inst)
    {
        if (m_re.m_program.size() >= kMaxProgram) fail("pattern expands to too large a program", 0);
        m_re.m_program.push_back(inst);
        return static_cast<std::uint32_t>(m_re.m_program.size() - 1);
    }
    std::uint32_t here() const { return static_cast<std::uint32_t>(m_re.m_program.size()); }

    static bool nullable(const Node& n)
    {
        switch (n.kind) {
        case Node::Empty:
        case Node::Look:
        case Node::Assert: return true;
        case Node::Set: return false;
        case Node::Concat:
            for (const auto& c : n.children)
                if (!nullable(*c)) return false;
            return true;
        case Node::Alt:
            for (const auto& c : n.children)
                if (nullable(*c)) return true;
            return false;
        case Node::Repeat: return n.min == 0 || nullable(*n.children[0]);
        }
        return true;
    }

    void emit_star(const Node& body, bool greedy)
    {
        if (nullable(body)) fail("unbounded repeat of a sub-pattern that can match empty (unsupported)", 0);
        const std::uint32_t split = push({Regex::Op::Split});
        const std::uint32_t start = here();
        emit(body);
        push({Regex::Op::Jump, split});
        const std::uint32_t after = here();
        m_re.m_program[split].a = greedy ? start : after;
        m_re.m_program[split].b = greedy ? after : start;
    }

    void emit_optional(const Node& body, bool greedy)
    {
        const std::uint32_t split = push({Regex::Op::Split});
        const std::uint32_t start = here();
        emit(body);
        const std::uint32_t after = here();
        m_re.m_program[split].a = greedy ? start : after;
        m_re.m_program[split].b = greedy ? after : start;
    }

    void emit(const Node& n)
    {
        switch (n.kind) {
        case Node::Empty: return;
        case Node::Set: push({Regex::Op::Set, n.set}); return;
        case Node::Concat:
            for (const auto& c : n.children) emit(*c);
            return;
        case Node::Alt: {
            // Split(first, rest) chains: leftmost alternative tried first.
            std::vector<std::uint32_t> jumps;
            for (std::size_t k = 0; k + 1 < n.children.size(); ++k) {
                const std::uint32_t split = push({Regex::Op::Split});
                m_re.m_program[split].a = here();
                emit(*n.children[k]);
                jumps.push_back(push({Regex::Op::Jump}));
                m_re.m_program[split].b = here();
            }
            emit(*n.children.back());
            for (std::uint32_t j : jumps) m_re.m_program[j].a = here();
            return;
        }
        case Node::Look: {
            const std::uint32_t look = push({n.negative ? Regex::Op::NegLookAhead : Regex::Op::LookAhead});
            m_re.m_program[look].a = here();
            emit(*n.children[0]);
            push({Regex::Op::Match});
            m_re.m_program[look].b = here();
            return;
        }
        case Node::Assert: push({n.assertion}); return;
        case Node::Repeat: {
            const Node& body = *n.children[0];
            if (body.kind == Node::Set) {
                push({n.greedy ? Regex::Op::RepeatGreedy : Regex::Op::RepeatLazy, body.set, 0, n.min, n.max});
                return;
            }
            for (std::uint32_t k = 0; k < n.min; ++k) emit(body);
            if (n.max == kUnbounded) {
                emit_star(body, n.greedy);
            } else {
                for (std::uint32_t k = n.min; k < n.max; ++k) emit_optional(body, n.greedy);
            }
            return;
        }
        }
    }

    // First-character sets. Known: the node cannot match empty and every match starts
    // with a code point from the collected sets; NullableKnown: the same for the
    // non-empty matches; Unknown: an assertion decides (no prefilter then).
    enum class First { Known, NullableKnown, Unknown };

    First first_sets(const Node& n, std::vector<std::uint32_t>& out) const
    {
        switch (n.kind) {
        case Node::Set: out.push_back(n.set); return First::Known;
        case Node::Empty: return First::NullableKnown;
        case Node::Look:
        case Node::Assert: return First::Unknown;
        case Node::Concat:
            for (const auto& c : n.children) {
                const First r = first_sets(*c, out);
                if (r != First::NullableKnown) return r;
            }
            return First::NullableKnown;
        case Node::Alt: {
            First all = First::Known;
            for (const auto& c : n.children) {
                const First r = first_sets(*c, out);
                if (r == First::Unknown) return r;
                if (r == First::NullableKnown) all = r;
            }
            return all;
        }
        case Node::Repeat: {
            const First r = first_sets(*n.children[0], out);
            if (r == First::Unknown) return r;
            return n.min > 0 && r == First::Known ? First::Known : First::NullableKnown;
        }
        }
        return First::Unknown;
    }

    void compute_first_set(const Node& root)
    {
        std::vector<std::uint32_t> sets;
        if (first_sets(root, sets) != First::Known) return;
        m_re.m_first_bmp.fill(0);
        for (std::uint32_t s : sets) m_re.m_sets[s].unite_bitmap(m_re.m_first_bmp);
        m_re.m_has_first_set = true;
    }

    Regex& m_re;
    std::string_view m_p;
    std::size_t m_i = 0;
};

// ---------------------------------------------------------------------------
// Matcher: a backtracking interpreter with an explicit stack
// ---------------------------------------------------------------------------

Regex::Regex(std::string_view pattern) : m_pattern(pattern)
{
    RegexCompiler(*this, pattern).compile();
}

struct Regex::Backtrack {
    enum Kind : std::uint8_t { Branch, GreedyGiveBack, LazyTakeMore } kind;
    std::uint32_t pc;
    std::size_t pos;
    std::uint32_t count;  // GreedyGiveBack: characters that may still be given back;
                          // LazyTakeMore: characters that may still be taken
};

namespace {

inline std::size_t previous_cp_start(std::string_view s, std::size_t pos)
{
    do {
        --pos;
    } while (pos > 0 && (static_cast<unsigned char>(s[pos]) & 0xC0) == 0x80);
    return pos;
}

}  // namespace

bool Regex::run(std::uint32_t pc, std::string_view s, std::size_t pos, std::size_t& end,
                std::vector<Backtrack>& stack, std::uint64_t& steps, std::uint64_t budget) const
{
    const std::size_t base = stack.size();
    const std::size_t n = s.size();
    for (;;) {
        if (++steps > budget)
            throw TokenizerError(fmt::format("regex \"{}\": backtracking budget of {} steps exhausted on a "
                                             "{}-byte piece (catastrophic pattern?)",
                                             m_pattern, budget, n));
        const Inst& in = m_program[pc];
        bool ok = true;
        switch (in.op) {
        case Op::Set: {
            if (pos >= n) {
                ok = false;
                break;
            }
            std::size_t q = pos;
            const char32_t cp = unicode::decode_utf8(s, q);
            if (!m_sets[in.a].contains(cp)) {
                ok = false;
                break;
            }
            pos = q;
            ++pc;
            break;
        }
        case Op::RepeatGreedy: {
            const CharSet& set = m_sets[in.a];
            std::uint32_t count = 0;
            while (count < in.max && pos < n) {
                std::size_t q = pos;
                if (!set.contains(unicode::decode_utf8(s, q))) break;
                pos = q;
                ++count;
            }
            steps += count;
            if (count < in.min) {
                ok = false;
                break;
            }
            if (count > in.min) stack.push_back({Backtrack::GreedyGiveBack, pc, pos, count - in.min});
            ++pc;
            break;
        }
        case Op::RepeatLazy: {
            const CharSet& set = m_sets[in.a];
            for (std::uint32_t count = 0; count < in.min; ++count) {
                std::size_t q = pos;
                if (pos >= n || !set.contains(unicode::decode_utf8(s, q))) {
                    ok = false;
                    break;
                }
                pos = q;
            }
            if (!ok) break;
            steps += in.min;
            if (in.max > in.min) stack.push_back({Backtrack::LazyTakeMore, pc, pos, in.max - in.min});
            ++pc;
            break;
        }
        case Op::Split:
            stack.push_back({Backtrack::Branch, in.b, pos, 0});
            pc = in.a;
            break;
        case Op::Jump: pc = in.a; break;
        case Op::LookAhead:
        case Op::NegLookAhead: {
            std::size_t ignored;
            const bool matched = run(in.a, s, pos, ignored, stack, steps, budget);
            if (matched == (in.op == Op::NegLookAhead)) {
                ok = false;
                break;
            }
            pc = in.b;
            break;
        }
        case Op::LineStart:
            ok = pos == 0 || s[pos - 1] == '\n';
            ++pc;
            break;
        case Op::LineEnd:
            ok = pos == n || s[pos] == '\n';
            ++pc;
            break;
        case Op::TextStart:
            ok = pos == 0;
            ++pc;
            break;
        case Op::TextEnd:
            ok = pos == n;
            ++pc;
            break;
        case Op::TextEndOrFinalNewline:
            ok = pos == n || (pos + 1 == n && s[pos] == '\n');
            ++pc;
            break;
        case Op::Match:
            end = pos;
            stack.resize(base);  // a match (or look-ahead) commits: no backtracking into it
            return true;
        }
        if (ok) continue;

        // Failure: resume the most recent choice point of this run.
        for (;;) {
            if (stack.size() == base) return false;
            Backtrack& b = stack.back();
            if (b.kind == Backtrack::Branch) {
                pc = b.pc;
                pos = b.pos;
                stack.pop_back();
                break;
            }
            if (b.kind == Backtrack::GreedyGiveBack) {
                b.pos = previous_cp_start(s, b.pos);
                pos = b.pos;
                pc = b.pc + 1;
                if (--b.count == 0) stack.pop_back();
                break;
            }
            // LazyTakeMore: one more character, if it matches.
            if (b.pos >= n) {
                stack.pop_back();
                continue;
            }
            std::size_t q = b.pos;
            if (!m_sets[m_program[b.pc].a].contains(unicode::decode_utf8(s, q))) {
                stack.pop_back();
                continue;
            }
            b.pos = q;
            pos = q;
            pc = b.pc + 1;
            if (--b.count == 0) stack.pop_back();
            break;
        }
    }
}

bool Regex::search(std::string_view subject, std::size_t from, std::size_t& match_begin, std::size_t& match_end) const
{
    // Linear patterns take a few steps per byte (a greedy run, giving it back, a second
    // alternative); exponential ones blow far past this.
    const std::uint64_t budget = 100000 + 64 * static_cast<std::uint64_t>(subject.size() - from);
    std::uint64_t steps = 0;
    thread_local std::vector<Backtrack> stack;
    const std::size_t n = subject.size();
    std::size_t pos = from;
    while (pos <= n) {
        std::size_t next = pos;
        if (pos < n) {
            const char32_t cp = unicode::decode_utf8(subject, next);
            if (m_has_first_set && cp < 0x10000 && !((m_first_bmp[cp >> 6] >> (cp & 63)) & 1)) {
                pos = next;
                continue;
            }
        } else if (m_has_first_set) {
            return false;
        }
        stack.clear();
        if (run(0, subject, pos, match_end, stack, steps, budget)) {
            match_begin = pos;
            return true;
        }
        if (pos == n) return false;
        pos = next;
    }
    return false;
}

}  // namespace moelens::tokenizer
