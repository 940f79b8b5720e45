// Lexer and parser for the chat-template Jinja subset. Whitespace handling follows
// Jinja2 as transformers configures it: trim_blocks and lstrip_blocks on, "-"
// markers strip all whitespace, "+" markers disable lstrip/trim, newlines are
// normalised to \n and one trailing newline is dropped.
#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "moelens/error.h"
#include "tokenizer/chat_template/ast.h"
#include "tokenizer/unicode.h"

namespace moelens::chat_template {
namespace {

constexpr int kMaxNesting = 200;

// What render.cpp implements; anything else is refused while parsing.
const char* const kFilters[] = {"default", "d", "length", "count", "string", "tojson", "trim", "upper", "lower",
                                "capitalize", "int", "replace", "items", "list", "join", "first", "last"};
const char* const kTests[] = {"defined", "undefined", "none", "true", "false", "boolean", "string", "number",
                              "integer", "float", "mapping", "sequence", "iterable", "callable", "even", "odd",
                              "divisibleby", "eq", "equalto", "sameas", "ne", "in"};

template <std::size_t N>
bool known(const char* const (&names)[N], const std::string& name)
{
    return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

struct Token {
    enum Type { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof } type;
    std::string value;
    SourcePos pos;
};

[[noreturn]] void syntax_error(SourcePos pos, const std::string& what)
{
    throw TokenizerError(fmt::format("chat template line {}:{}: {}", pos.line, pos.column, what));
}

// Python's str.isspace(), which Jinja2's whitespace control uses: White_Space plus the
// information separators U+001C..U+001F.
bool is_python_space(char32_t cp)
{
    return tokenizer::unicode::is_white_space(cp) || (cp >= 0x1C && cp <= 0x1F);
}

// Length of the whitespace run starting at s[pos] / ending at s[end].
std::size_t space_run_after(const std::string& s, std::size_t pos)
{
    std::size_t i = pos;
    while (i < s.size()) {
        std::size_t next = i;
        if (!is_python_space(tokenizer::unicode::decode_utf8(s, next))) break;
        i = next;
    }
    return i - pos;
}

std::size_t space_run_before(const std::string& s, std::size_t end)
{
    std::size_t i = end;
    while (i > 0) {
        std::size_t start = i - 1;
        while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
        std::size_t next = start;
        if (!is_python_space(tokenizer::unicode::decode_utf8(s, next))) break;
        i = start;
    }
    return end - i;
}

class Lexer {
public:
    explicit Lexer(std::string source) : m_src(std::move(source)) {}

    std::vector<Token> run()
    {
        const std::size_t n = m_src.size();
        std::size_t pos = 0;
        while (pos < n) {
            std::size_t tag = pos;
            while ((tag = m_src.find('{', tag)) != std::string::npos) {
                if (tag + 1 < n && (m_src[tag + 1] == '{' || m_src[tag + 1] == '%' || m_src[tag + 1] == '#')) break;
                ++tag;
            }
            std::string text = m_src.substr(pos, tag == std::string::npos ? std::string::npos : tag - pos);
            const SourcePos text_pos = at(pos);
            char kind = 0, marker = 0;
            if (tag != std::string::npos) {
                kind = m_src[tag + 1];
                marker = tag + 2 < n ? m_src[tag + 2] : '\0';
                if (marker == '-') {
                    text.erase(text.size() - space_run_before(text, text.size()));
                } else if (marker != '+' && (kind == '%' || kind == '#')) {
                    // lstrip_blocks: whitespace between a line start and a block tag goes.
                    const std::size_t nl = text.rfind('\n');
                    const std::size_t line_start = nl == std::string::npos ? 0 : nl + 1;
                    const bool line_starting = nl != std::string::npos || pos == 0 || m_src[pos - 1] == '\n';
                    if (line_starting && line_start + space_run_after(text, line_start) == text.size())
                        text.erase(line_start);
                }
            }
            if (!text.empty()) m_tokens.push_back({Token::Text, std::move(text), text_pos});
            if (tag == std::string::npos) break;
            pos = tag + 2 + ((marker == '-' || marker == '+') ? 1 : 0);
            bool strip_after = false, keep_newline = false;
            if (kind == '#') {
                const std::size_t close = m_src.find("#}", pos);
                if (close == std::string::npos) syntax_error(at(tag), "unclosed comment {#");
                strip_after = close > pos && m_src[close - 1] == '-';
                keep_newline = close > pos && m_src[close - 1] == '+';
                pos = close + 2;
            } else {
                pos = lex_tag(tag, kind, pos, strip_after, keep_newline);
            }
            if (strip_after) {
                pos += space_run_after(m_src, pos);
            } else if (kind != '{' && !keep_newline && pos < n && m_src[pos] == '\n') {
                ++pos;  // trim_blocks
            }
        }
        m_tokens.push_back({Token::Eof, "", at(n)});
        return std::move(m_tokens);
    }

    SourcePos at(std::size_t offset)
    {
        // Incremental: offsets asked for only grow, except for error positions.
        if (offset < m_line_offset) {
            m_line_offset = 0;
            m_line = 1;
            m_line_start = 0;
        }
        for (; m_line_offset < offset && m_line_offset < m_src.size(); ++m_line_offset)
            if (m_src[m_line_offset] == '\n') {
                ++m_line;
                m_line_start = m_line_offset + 1;
            }
        return {m_line, static_cast<int>(offset - m_line_start) + 1};
    }

private:
    // Lexes the inside of {{ ... }} or {% ... %}; returns the offset after the tag.
    std::size_t lex_tag(std::size_t tag, char kind, std::size_t pos, bool& strip_after, bool& keep_newline)
    {
        const char close = kind == '{' ? '}' : '%';
        m_tokens.push_back({kind == '{' ? Token::VarBegin : Token::BlockBegin, "", at(tag)});
        const std::size_t n = m_src.size();
        for (;;) {
            pos += space_run_after(m_src, pos);
            if (pos >= n) syntax_error(at(tag), kind == '{' ? "unclosed {{" : "unclosed {%");
            const char c = m_src[pos];
            auto closes_at = [&](std::size_t p) { return p + 1 < n && m_src[p] == close && m_src[p + 1] == '}'; };
            if ((c == '-' || c == '+') && closes_at(pos + 1)) {
                strip_after = c == '-';
                keep_newline = c == '+';
                pos += 3;
                break;
            }
            if (closes_at(pos)) {
                pos += 2;
                break;
            }
            const SourcePos tp = at(pos);
            if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
                std::size_t e = pos;
                while (e < n && (std::isalnum(static_cast<unsigned char>(m_src[e])) || m_src[e] == '_')) ++e;
                m_tokens.push_back({Token::Name, m_src.substr(pos, e - pos), tp});
                pos = e;
            } else if (std::isdigit(static_cast<unsigned char>(c))) {
                std::size_t e = pos;
                while (e < n && (std::isdigit(static_cast<unsigned char>(m_src[e])) || m_src[e] == '_')) ++e;
                bool is_float = false;
                if (e + 1 < n && m_src[e] == '.' && std::isdigit(static_cast<unsigned char>(m_src[e + 1]))) {
                    is_float = true;
                    ++e;
                    while (e < n && std::isdigit(static_cast<unsigned char>(m_src[e]))) ++e;
                }
                std::string digits;
                for (std::size_t k = pos; k < e; ++k)
                    if (m_src[k] != '_') digits += m_src[k];
                m_tokens.push_back({is_float ? Token::Float : Token::Int, digits, tp});
                pos = e;
            } else if (c == '\'' || c == '"') {
                pos = lex_string(pos, tp);
            } else {
                static const char* const kOps[] = {"==", "!=", "<=", ">=", "//", "**", "<", ">", "+", "-", "*", "/",
                                                   "%", "~", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", "="};
                bool found = false;
                for (const char* op : kOps) {
                    const std::size_t len = std::char_traits<char>::length(op);
                    if (m_src.compare(pos, len, op) == 0) {
                        m_tokens.push_back({Token::Op, op, tp});
                        pos += len;
                        found = true;
                        break;
                    }
                }
                if (!found) syntax_error(tp, fmt::format("unexpected character '{}'", c));
            }
        }
        m_tokens.push_back({kind == '{' ? Token::VarEnd : Token::BlockEnd, "", at(pos)});
        return pos;
    }

    // Python string literal escapes, as Jinja2 decodes them.
    std::size_t lex_string(std::size_t pos, SourcePos tp)
    {
        const char quote = m_src[pos++];
        std::string out;
        const std::size_t n = m_src.size();
        for (;;) {
            if (pos >= n) syntax_error(tp, "unterminated string literal");
            const char c = m_src[pos++];
            if (c == quote) break;
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos >= n) syntax_error(tp, "unterminated string literal");
            const char e = m_src[pos++];
            auto hex = [&](int digits) {
                if (pos + static_cast<std::size_t>(digits) > n) syntax_error(tp, "truncated escape in string literal");
                unsigned long v = 0;
                for (int k = 0; k < digits; ++k) {
                    const char h = m_src[pos++];
                    if (!std::isxdigit(static_cast<unsigned char>(h))) syntax_error(tp, "bad escape in string literal");
                    v = v * 16 + static_cast<unsigned long>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0'
                                                                                                      : (std::tolower(h) - 'a' + 10));
                }
                if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) syntax_error(tp, "bad code point in string literal");
                append_utf8(out, static_cast<char32_t>(v));
            };
            switch (e) {
            case 'n': out += '\n'; break;
            case 't': out += '\t'; break;
            case 'r': out += '\r'; break;
            case 'f': out += '\f'; break;
            case 'v': out += '\v'; break;
            case 'a': out += '\a'; break;
            case 'b': out += '\b'; break;
            case '0': out += '\0'; break;
            case '\\': out += '\\'; break;
            case '\'': out += '\''; break;
            case '"': out += '"'; break;
            case '\n': break;  // line continuation
            case 'x': hex(2); break;
            case 'u': hex(4); break;
            case 'U': hex(8); break;
            default:
                out += '\\';  // unknown escapes stay as written, as in Python
                out += e;
            }
        }
        m_tokens.push_back({Token::String, std::move(out), tp});
        return pos;
    }

    static void append_utf8(std::string& out, char32_t cp)
    {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    std::string m_src;
    std::vector<Token> m_tokens;
    std::size_t m_line_offset = 0, m_line_start = 0;
    int m_line = 1;
};

class Parser {
public:
    explicit Parser(std::vector<Token> tokens) : m_t(std::move(tokens)) {}

    Template parse()
    {
        Template t;
        std::string end;
        t.body = parse_body({}, end);
        return t;
    }

private:
    const Token& cur() const { return m_t[m_i]; }
    const Token& peek_at(std::size_t k) const { return m_t[std::min(m_i + k, m_t.size() - 1)]; }
    bool is_op(const char* op) const { return cur().type == Token::Op && cur().value == op; }
    bool is_name(const char* name) const { return cur().type == Token::Name && cur().value == name; }
    const Token& take() { return m_t[m_i == m_t.size() - 1 ? m_i : m_i++]; }

    [[noreturn]] void unexpected(const std::string& expected) const
    {
        const Token& t = cur();
        std::string found;
        switch (t.type) {
        case Token::Eof: found = "end of template"; break;
        case Token::VarEnd: found = "'}}'"; break;
        case Token::BlockEnd: found = "'%}'"; break;
        case Token::Text: found = "text"; break;
        default: found = "'" + t.value + "'";
        }
        syntax_error(t.pos, fmt::format("expected {}, found {}", expected, found));
    }

    void expect_op(const char* op)
    {
        if (!is_op(op)) unexpected(fmt::format("'{}'", op));
        take();
    }
    std::string expect_name()
    {
        if (cur().type != Token::Name) unexpected("a name");
        return take().value;
    }
    void expect_block_end()
    {
        if (cur().type != Token::BlockEnd) unexpected("'%}'");
        take();
    }

    struct DepthGuard {
        DepthGuard(int& d, SourcePos pos) : depth(d)
        {
            if (++depth > kMaxNesting) syntax_error(pos, "nesting too deep");
        }
        ~DepthGuard() { --depth; }
        int& depth;
    };

    // Statements until one of `enders` (a block keyword) or the end; `ended_by`
    // receives the keyword (its tag is left for the caller after the keyword).
    Body parse_body(const std::vector<std::string>& enders, std::string& ended_by, SourcePos opened_at = {})
    {
        DepthGuard guard(m_depth, cur().pos);
        const SourcePos start = opened_at;
        Body body;
        for (;;) {
            const Token& t = cur();
            if (t.type == Token::Eof) {
                if (!enders.empty())
                    syntax_error(start, fmt::format("unclosed block: expected {{% {} %}} before the end of the "
                                                    "template (line {}:{})",
                                                    enders.back(), t.pos.line, t.pos.column));
                ended_by.clear();
                return body;
            }
            if (t.type == Token::Text) {
                auto s = std::make_unique<Stmt>();
                s->kind = Stmt::Text;
                s->pos = t.pos;
                s->text = t.value;
                take();
                body.push_back(std::move(s));
                continue;
            }
            if (t.type == Token::VarBegin) {
                auto s = std::make_unique<Stmt>();
                s->kind = Stmt::Output;
                s->pos = t.pos;
                take();
                s->expr = parse_expression();
                if (cur().type != Token::VarEnd) unexpected("'}}'");
                take();
                body.push_back(std::move(s));
                continue;
            }
            if (t.type != Token::BlockBegin) unexpected("text, {{ or {%");
            const SourcePos tag_pos = t.pos;
            take();
            if (cur().type != Token::Name) unexpected("a statement keyword");
            const std::string keyword = cur().value;
            for (const std::string& e : enders)
                if (keyword == e) {
                    take();
                    ended_by = keyword;
                    return body;
                }
            take();
            body.push_back(parse_statement(keyword, tag_pos));
        }
    }

    StmtPtr parse_statement(const std::string& keyword, SourcePos pos)
    {
        auto s = std::make_unique<Stmt>();
        s->pos = pos;
        std::string ended;
        if (keyword == "if") {
            s->kind = Stmt::If;
            ExprPtr cond = parse_expression();
            expect_block_end();
            for (;;) {
                Body body = parse_body({"elif", "else", "endif"}, ended, pos);
                s->branches.emplace_back(std::move(cond), std::move(body));
                if (ended == "elif") {
                    cond = parse_expression();
                    expect_block_end();
                    continue;
                }
                if (ended == "else") {
                    expect_block_end();
                    s->else_body = parse_body({"endif"}, ended, pos);
                }
                expect_block_end();
                break;
            }
        } else if (keyword == "for") {
            s->kind = Stmt::For;
            s->targets.push_back(expect_name());
            while (is_op(",")) {
                take();
                s->targets.push_back(expect_name());
            }
            if (!is_name("in")) unexpected("'in'");
            take();
            s->expr = parse_or_expression();
            if (is_name("if")) {
                take();
                s->filter = parse_or_expression();
            }
            if (is_name("recursive")) syntax_error(cur().pos, "recursive for loops are not supported");
            expect_block_end();
            ++m_loop_depth;
            s->body = parse_body({"else", "endfor"}, ended, pos);
            --m_loop_depth;
            if (ended == "else") {
                expect_block_end();
                s->else_body = parse_body({"endfor"}, ended, pos);
            }
            expect_block_end();
        } else if (keyword == "set") {
            const std::string name = expect_name();
            if (is_op(".")) {
                take();
                s->kind = Stmt::SetAttr;
                s->targets = {name, expect_name()};
            } else {
                s->kind = Stmt::Set;
                s->targets = {name};
            }
            if (!is_op("=")) syntax_error(cur().pos, "block set ({% set x %}...{% endset %}) is not supported");
            take();
            s->expr = parse_expression();
            expect_block_end();
        } else if (keyword == "macro") {
            s->kind = Stmt::Macro;
            s->targets = {expect_name()};
            expect_op("(");
            while (!is_op(")")) {
                std::string param = expect_name();
                ExprPtr def;
                if (is_op("=")) {
                    take();
                    def = parse_expression();
                }
                s->params.emplace_back(std::move(param), std::move(def));
                if (!is_op(",")) break;
                take();
            }
            expect_op(")");
            expect_block_end();
            s->body = parse_body({"endmacro"}, ended, pos);
            if (cur().type == Token::Name) take();  // {% endmacro name %}
            expect_block_end();
        } else if (keyword == "break" || keyword == "continue") {
            if (m_loop_depth == 0) syntax_error(pos, fmt::format("'{}' outside a for loop", keyword));
            s->kind = keyword == "break" ? Stmt::Break : Stmt::Continue;
            expect_block_end();
        } else if (keyword == "generation") {
            // transformers' marker for assistant-token masks: renders its body unchanged.
            s->kind = Stmt::Scope;
            expect_block_end();
            s->body = parse_body({"endgeneration"}, ended, pos);
            expect_block_end();
        } else {
            syntax_error(pos, fmt::format("unsupported or unexpected tag '{}'", keyword));
        }
        return s;
    }

    // ---- expressions ------------------------------------------------------

    ExprPtr node(Expr::Kind kind, SourcePos pos)
    {
        auto e = std::make_unique<Expr>();
        e->kind = kind;
        e->pos = pos;
        return e;
    }

    ExprPtr parse_expression()
    {
        DepthGuard guard(m_depth, cur().pos);
        ExprPtr e = parse_or_expression();
        if (is_name("if")) {
            // Jinja's inline conditional: a if cond [else b].
            auto c = node(Expr::CondExpr, cur().pos);
            take();
            ExprPtr cond = parse_or_expression();
            ExprPtr other;
            if (is_name("else")) {
                take();
                other = parse_expression();
            }
            c->args.push_back(std::move(e));
            c->args.push_back(std::move(cond));
            c->args.push_back(std::move(other));
            return c;
        }
        return e;
    }

    // Without the inline `a if b else c`: a for header's 'if' starts the loop filter.
    ExprPtr parse_or_expression()
    {
        ExprPtr left = parse_and();
        while (is_name("or")) {
            auto e = node(Expr::Or, cur().pos);
            take();
            e->args.push_back(std::move(left));
            e->args.push_back(parse_and());
            left = std::move(e);
        }
        return left;
    }

    ExprPtr parse_and()
    {
        ExprPtr left = parse_not();
        while (is_name("and")) {
            auto e = node(Expr::And, cur().pos);
            take();
            e->args.push_back(std::move(left));
            e->args.push_back(parse_not());
            left = std::move(e);
        }
        return left;
    }

    ExprPtr parse_not()
    {
        if (is_name("not")) {
            DepthGuard guard(m_depth, cur().pos);
            auto e = node(Expr::Not, cur().pos);
            take();
            e->args.push_back(parse_not());
            return e;
        }
        return parse_compare();
    }

    ExprPtr parse_compare()
    {
        ExprPtr first = parse_math1();
        ExprPtr cmp;
        for (;;) {
            std::string op;
            const SourcePos pos = cur().pos;
            if (cur().type == Token::Op && (cur().value == "==" || cur().value == "!=" || cur().value == "<" ||
                                            cur().value == "<=" || cur().value == ">" || cur().value == ">=")) {
                op = take().value;
            } else if (is_name("in")) {
                take();
                op = "in";
            } else if (is_name("not") && peek_at(1).type == Token::Name && peek_at(1).value == "in") {
                take();
                take();
                op = "not in";
            } else {
                break;
            }
            if (!cmp) {
                cmp = node(Expr::Compare, pos);
                cmp->args.push_back(std::move(first));
            }
            cmp->ops.push_back(op);
            cmp->args.push_back(parse_math1());
        }
        return cmp ? std::move(cmp) : std::move(first);
    }

    ExprPtr binary(const std::string& op, ExprPtr left, ExprPtr right, SourcePos pos)
    {
        auto e = node(Expr::Binary, pos);
        e->name = op;
        e->args.push_back(std::move(left));
        e->args.push_back(std::move(right));
        return e;
    }

    ExprPtr parse_math1()
    {
        ExprPtr left = parse_concat();
        while (is_op("+") || is_op("-")) {
            const SourcePos pos = cur().pos;
            const std::string op = take().value;
            left = binary(op, std::move(left), parse_concat(), pos);
        }
        return left;
    }

    ExprPtr parse_concat()
    {
        ExprPtr left = parse_math2();
        while (is_op("~")) {
            const SourcePos pos = cur().pos;
            take();
            left = binary("~", std::move(left), parse_math2(), pos);
        }
        return left;
    }

    ExprPtr parse_math2()
    {
        ExprPtr left = parse_pow();
        while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
            const SourcePos pos = cur().pos;
            const std::string op = take().value;
            left = binary(op, std::move(left), parse_pow(), pos);
        }
        return left;
    }

    ExprPtr parse_pow()
    {
        ExprPtr left = parse_unary(true);
        while (is_op("**")) {
            const SourcePos pos = cur().pos;
            take();
            left = binary("**", std::move(left), parse_unary(true), pos);
        }
        return left;
    }

    ExprPtr parse_unary(bool with_filter)
    {
        DepthGuard guard(m_depth, cur().pos);
        ExprPtr e;
        if (is_op("-") || is_op("+")) {
            e = node(is_op("-") ? Expr::Neg : Expr::Pos, cur().pos);
            take();
            e->args.push_back(parse_unary(false));
        } else {
            e = parse_primary();
        }
        e = parse_postfix(std::move(e));
        if (with_filter) e = parse_filters_and_tests(std::move(e));
        return e;
    }

    ExprPtr parse_primary()
    {
        const Token& t = cur();
        const SourcePos pos = t.pos;
        if (t.type == Token::String) {
            std::string s = take().value;
            while (cur().type == Token::String) s += take().value;  // adjacent literals concatenate
            auto e = node(Expr::Literal, pos);
            e->value = Value(std::move(s));
            return e;
        }
        if (t.type == Token::Int || t.type == Token::Float) {
            auto e = node(Expr::Literal, pos);
            try {
                e->value = t.type == Token::Int ? Value(static_cast<std::int64_t>(std::stoll(t.value)))
                                                : Value(std::stod(t.value));
            } catch (const std::exception&) {
                syntax_error(pos, "number out of range");
            }
            take();
            return e;
        }
        if (t.type == Token::Name) {
            const std::string name = take().value;
            auto e = node(Expr::Literal, pos);
            if (name == "true" || name == "True") e->value = Value(true);
            else if (name == "false" || name == "False") e->value = Value(false);
            else if (name == "none" || name == "None") e->value = Value(None{});
            else {
                e->kind = Expr::Name;
                e->name = name;
            }
            return e;
        }
        if (is_op("(")) {
            take();
            ExprPtr inner = parse_expression();
            if (is_op(",")) syntax_error(cur().pos, "tuples are not supported");
            expect_op(")");
            return inner;
        }
        if (is_op("[")) {
            take();
            auto e = node(Expr::ListLit, pos);
            while (!is_op("]")) {
                e->args.push_back(parse_expression());
                if (!is_op(",")) break;
                take();
            }
            expect_op("]");
            return e;
        }
        if (is_op("{")) {
            take();
            auto e = node(Expr::DictLit, pos);
            while (!is_op("}")) {
                e->args.push_back(parse_expression());
                expect_op(":");
                e->args.push_back(parse_expression());
                if (!is_op(",")) break;
                take();
            }
            expect_op("}");
            return e;
        }
        unexpected("an expression");
    }

    void parse_call_args(Expr& call)
    {
        expect_op("(");
        while (!is_op(")")) {
            if (cur().type == Token::Name && peek_at(1).type == Token::Op && peek_at(1).value == "=") {
                std::string key = take().value;
                take();
                call.kwargs.emplace_back(std::move(key), parse_expression());
            } else {
                if (!call.kwargs.empty()) syntax_error(cur().pos, "positional argument after keyword argument");
                call.args.push_back(parse_expression());
            }
            if (!is_op(",")) break;
            take();
        }
        expect_op(")");
    }

    ExprPtr parse_postfix(ExprPtr e)
    {
        for (;;) {
            const SourcePos pos = cur().pos;
            if (is_op(".")) {
                take();
                auto a = node(Expr::GetAttr, pos);
                if (cur().type == Token::Int) a->name = take().value;  // foo.0
                else a->name = expect_name();
                a->args.push_back(std::move(e));
                e = std::move(a);
            } else if (is_op("[")) {
                take();
                ExprPtr parts[3];
                int colons = 0;
                for (;;) {
                    if (!is_op(":") && !is_op("]")) parts[colons] = parse_expression();
                    if (is_op(":") && colons < 2) {
                        take();
                        ++colons;
                        continue;
                    }
                    break;
                }
                expect_op("]");
                if (colons == 0) {
                    if (!parts[0]) syntax_error(pos, "empty subscript");
                    auto g = node(Expr::GetItem, pos);
                    g->args.push_back(std::move(e));
                    g->args.push_back(std::move(parts[0]));
                    e = std::move(g);
                } else {
                    auto s = node(Expr::Slice, pos);
                    s->args.push_back(std::move(e));
                    for (auto& p : parts) s->args.push_back(std::move(p));
                    e = std::move(s);
                }
            } else if (is_op("(")) {
                auto c = node(Expr::Call, pos);
                c->args.push_back(std::move(e));
                parse_call_args(*c);
                e = std::move(c);
            } else {
                return e;
            }
        }
    }

    ExprPtr parse_filters_and_tests(ExprPtr e)
    {
        for (;;) {
            const SourcePos pos = cur().pos;
            if (is_op("|")) {
                take();
                auto f = node(Expr::Filter, pos);
                const SourcePos name_pos = cur().pos;
                f->name = expect_name();
                if (!known(kFilters, f->name)) syntax_error(name_pos, fmt::format("unsupported filter '{}'", f->name));
                f->args.push_back(std::move(e));
                if (is_op("(")) parse_call_args(*f);
                e = parse_postfix(std::move(f));
            } else if (is_name("is")) {
                take();
                auto t = node(Expr::Test, pos);
                if (is_name("not")) {
                    take();
                    t->negated = true;
                }
                // `is none`/`is true` arrive as literals' names.
                if (cur().type != Token::Name) unexpected("a test name");
                const SourcePos name_pos = cur().pos;
                t->name = take().value;
                if (!known(kTests, t->name)) syntax_error(name_pos, fmt::format("unsupported test '{}'", t->name));
                t->args.push_back(std::move(e));
                if (is_op("(")) {
                    parse_call_args(*t);
                } else if (cur().type == Token::String || cur().type == Token::Int || cur().type == Token::Float) {
                    t->args.push_back(parse_primary());  // `is divisibleby 3`, `is eq "x"`
                }
                e = std::move(t);
            } else {
                return e;
            }
        }
    }

    std::vector<Token> m_t;
    std::size_t m_i = 0;
    int m_depth = 0;
    int m_loop_depth = 0;
};

}  // namespace

Template parse_template(const std::string& source)
{
    if (const std::size_t bad = tokenizer::unicode::find_invalid_utf8(source); bad != source.size())
        throw TokenizerError(fmt::format("chat template is not valid UTF-8 (byte {})", bad));
    // Jinja2 normalises \r\n and \r to \n and drops one trailing newline.
    std::string src;
    src.reserve(source.size());
    for (std::size_t i = 0; i < source.size(); ++i) {
        if (source[i] == '\r') {
            src += '\n';
            if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
        } else {
            src += source[i];
        }
    }
    if (!src.empty() && src.back() == '\n') src.pop_back();
    return Parser(Lexer(std::move(src)).run()).parse();
}

}  // namespace moelens::chat_template
