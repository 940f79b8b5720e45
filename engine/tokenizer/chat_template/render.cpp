// The chat-template interpreter: walks the parsed tree with Jinja2 semantics for the
// supported subset, bounded in output size, evaluation steps and macro recursion.
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "moelens/chat_template.h"
#include "moelens/tokenizer.h"
#include "tokenizer/chat_template/ast.h"

namespace moelens {

using namespace moelens::chat_template;

struct ChatTemplate::Impl {
    Template tmpl;
    std::string bos_token, eos_token;
};

namespace {

constexpr std::size_t kMaxOutputBytes = 64u << 20;
constexpr std::uint64_t kMaxSteps = 2'000'000;  // a 1,000-message chat with the V3 template needs ~50k
constexpr int kMaxCallDepth = 64;
constexpr std::int64_t kMaxRange = 1'000'000;

using Frame = std::vector<std::pair<std::string, Value>>;

enum class Flow { Normal, Break, Continue };

bool is_py_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::vector<std::string> utf8_chars(const std::string& s)
{
    std::vector<std::string> out;
    for (std::size_t i = 0; i < s.size();) {
        std::size_t len = 1;
        const auto b = static_cast<unsigned char>(s[i]);
        if (b >= 0xF0) len = 4;
        else if (b >= 0xE0) len = 3;
        else if (b >= 0xC0) len = 2;
        out.push_back(s.substr(i, len));
        i += len;
    }
    return out;
}

std::string json_quote(const std::string& s)
{
    std::string out = "\"";
    for (char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
            else out += c;
        }
    }
    return out + "\"";
}

Value from_json(const nlohmann::ordered_json& j)
{
    if (j.is_null()) return Value(None{});
    if (j.is_boolean()) return Value(j.get<bool>());
    if (j.is_number_integer()) return Value(j.get<std::int64_t>());
    if (j.is_number_unsigned()) return Value(static_cast<std::int64_t>(j.get<std::uint64_t>()));
    if (j.is_number_float()) return Value(j.get<double>());
    if (j.is_string()) return Value(j.get<std::string>());
    if (j.is_array()) {
        List l;
        for (const auto& e : j) l.push_back(from_json(e));
        return Value(std::move(l));
    }
    Dict d;
    for (const auto& [k, v] : j.items()) d.emplace_back(k, from_json(v));
    return Value(std::move(d));
}

class Interpreter {
public:
    Interpreter(Dict globals) : m_globals(std::move(globals)) { m_frames.emplace_back(); }

    std::string run(const Template& t)
    {
        exec(t.body);
        return std::move(m_out);
    }

private:
    [[noreturn]] static void fail(SourcePos pos, const std::string& what)
    {
        throw TokenizerError(fmt::format("chat template line {}:{}: {}", pos.line, pos.column, what));
    }

    void step(SourcePos pos)
    {
        if (++m_steps > kMaxSteps) fail(pos, fmt::format("evaluation exceeded {} steps (endless loop?)", kMaxSteps));
    }

    void emit(const std::string& s, SourcePos pos)
    {
        if (m_out.size() + s.size() > kMaxOutputBytes)
            fail(pos, fmt::format("output exceeds {} bytes", kMaxOutputBytes));
        m_out += s;
    }

    // ---- variables ---------------------------------------------------------

    Value lookup(const std::string& name) const
    {
        for (std::size_t i = m_frames.size(); i-- > m_floor;)
            for (const auto& [k, v] : m_frames[i])
                if (k == name) return v;
        if (m_floor > 0)
            for (const auto& [k, v] : m_frames[0])
                if (k == name) return v;
        for (const auto& [k, v] : m_globals)
            if (k == name) return v;
        return Value::undefined(name);
    }

    void assign(const std::string& name, Value v)
    {
        Frame& f = m_frames.back();
        for (auto& [k, old] : f)
            if (k == name) {
                old = std::move(v);
                return;
            }
        f.emplace_back(name, std::move(v));
    }

    // ---- statements --------------------------------------------------------

    Flow exec(const Body& body)
    {
        for (const StmtPtr& s : body) {
            const Flow f = exec(*s);
            if (f != Flow::Normal) return f;
        }
        return Flow::Normal;
    }

    Flow exec(const Stmt& s)
    {
        step(s.pos);
        switch (s.kind) {
        case Stmt::Text: emit(s.text, s.pos); break;
        case Stmt::Output: {
            const Value v = eval(*s.expr);
            emit(v.str(), s.pos);
            break;
        }
        case Stmt::If:
            for (const auto& [cond, body] : s.branches)
                if (eval(*cond).truthy()) return exec(body);
            return exec(s.else_body);
        case Stmt::For: return exec_for(s);
        case Stmt::Set: assign(s.targets[0], eval(*s.expr)); break;
        case Stmt::SetAttr: {
            const Value target = lookup(s.targets[0]);
            if (!target.is_namespace())
                fail(s.pos, fmt::format("cannot set attribute '{}' on {} '{}' (only a namespace())", s.targets[1],
                                        target.type_name(), s.targets[0]));
            Value v = eval(*s.expr);
            Dict& attrs = target.as_namespace().attrs;
            auto it = std::find_if(attrs.begin(), attrs.end(), [&](const auto& kv) { return kv.first == s.targets[1]; });
            if (it != attrs.end()) it->second = std::move(v);
            else attrs.emplace_back(s.targets[1], std::move(v));
            break;
        }
        case Stmt::Macro: {
            auto m = std::make_shared<Macro>();
            m->name = s.targets[0];
            m->definition = &s;
            assign(s.targets[0], Value(std::shared_ptr<const Macro>(std::move(m))));
            break;
        }
        case Stmt::Break: return Flow::Break;
        case Stmt::Continue: return Flow::Continue;
        case Stmt::Scope: return exec(s.body);
        }
        return Flow::Normal;
    }

    List iterate(const Value& v, SourcePos pos)
    {
        if (v.is_list()) return v.as_list();
        if (v.is_undefined()) return {};
        if (v.is_dict()) {
            List keys;
            for (const auto& kv : v.as_dict()) keys.emplace_back(kv.first);
            return keys;
        }
        if (v.is_string()) {
            List chars;
            for (auto& c : utf8_chars(v.as_string())) chars.emplace_back(std::move(c));
            return chars;
        }
        fail(pos, fmt::format("cannot iterate over {}", v.type_name()));
    }

    void bind_targets(const Stmt& s, const Value& item)
    {
        if (s.targets.size() == 1) {
            assign(s.targets[0], item);
            return;
        }
        if (!item.is_list() || item.as_list().size() != s.targets.size())
            fail(s.pos, fmt::format("cannot unpack {} into {} loop variables", item.repr(), s.targets.size()));
        for (std::size_t k = 0; k < s.targets.size(); ++k) assign(s.targets[k], item.as_list()[k]);
    }

    Flow exec_for(const Stmt& s)
    {
        List items = iterate(eval(*s.expr), s.pos);
        if (s.filter) {
            List kept;
            for (Value& item : items) {
                step(s.pos);
                m_frames.emplace_back();
                bind_targets(s, item);
                const bool keep = eval(*s.filter).truthy();
                m_frames.pop_back();
                if (keep) kept.push_back(std::move(item));
            }
            items = std::move(kept);
        }
        if (items.empty()) return exec(s.else_body);
        const auto n = static_cast<std::int64_t>(items.size());
        for (std::int64_t i = 0; i < n; ++i) {
            step(s.pos);
            m_frames.emplace_back();
            Dict loop = {{"index", Value(i + 1)},
                         {"index0", Value(i)},
                         {"revindex", Value(n - i)},
                         {"revindex0", Value(n - i - 1)},
                         {"first", Value(i == 0)},
                         {"last", Value(i == n - 1)},
                         {"length", Value(n)},
                         {"previtem", i > 0 ? items[static_cast<std::size_t>(i - 1)] : Value::undefined("previtem")},
                         {"nextitem", i + 1 < n ? items[static_cast<std::size_t>(i + 1)] : Value::undefined("nextitem")}};
            assign("loop", Value(std::move(loop)));
            bind_targets(s, items[static_cast<std::size_t>(i)]);
            const Flow f = exec(s.body);
            m_frames.pop_back();
            if (f == Flow::Break) break;
        }
        return Flow::Normal;
    }

    // ---- expressions -------------------------------------------------------

    static void require_defined(const Value& v, SourcePos pos)
    {
        if (v.is_undefined()) fail(pos, fmt::format("'{}' is undefined", v.undefined_name()));
    }

    static Value index(const Value& obj, const Value& key, SourcePos pos)
    {
        require_defined(obj, pos);
        if (obj.is_dict() || obj.is_namespace()) {
            if (!key.is_string()) return Value::undefined(key.repr());
            const Value* v = obj.find(key.as_string());
            return v ? *v : Value::undefined(key.as_string());
        }
        if (obj.is_list() || obj.is_string()) {
            if (!key.is_int() && !key.is_bool()) fail(pos, fmt::format("{} index must be an integer", obj.type_name()));
            std::int64_t i = key.as_int();
            if (obj.is_list()) {
                const auto n = static_cast<std::int64_t>(obj.as_list().size());
                if (i < 0) i += n;
                if (i < 0 || i >= n) return Value::undefined(fmt::format("[{}]", key.str()));
                return obj.as_list()[static_cast<std::size_t>(i)];
            }
            const auto chars = utf8_chars(obj.as_string());
            const auto n = static_cast<std::int64_t>(chars.size());
            if (i < 0) i += n;
            if (i < 0 || i >= n) return Value::undefined(fmt::format("[{}]", key.str()));
            return Value(chars[static_cast<std::size_t>(i)]);
        }
        return Value::undefined(key.str());
    }

    Value slice(const Expr& e)
    {
        const Value obj = eval(*e.args[0]);
        require_defined(obj, e.pos);
        if (!obj.is_list() && !obj.is_string()) fail(e.pos, fmt::format("cannot slice {}", obj.type_name()));
        List items = obj.is_list() ? obj.as_list() : List{};
        if (obj.is_string())
            for (auto& c : utf8_chars(obj.as_string())) items.emplace_back(std::move(c));
        const auto n = static_cast<std::int64_t>(items.size());
        auto bound = [&](const ExprPtr& p, std::int64_t fallback) {
            if (!p) return fallback;
            const Value v = eval(*p);
            if (v.is_none()) return fallback;
            if (!v.is_int()) fail(e.pos, "slice bounds must be integers");
            return v.as_int();
        };
        const std::int64_t step = bound(e.args[3], 1);
        if (step == 0) fail(e.pos, "slice step cannot be zero");
        std::int64_t start = bound(e.args[1], step > 0 ? 0 : n - 1);
        std::int64_t stop = bound(e.args[2], step > 0 ? n : -n - 1);
        auto clamp = [&](std::int64_t v) {
            if (v < 0) v += n;
            return step > 0 ? std::clamp<std::int64_t>(v, 0, n) : std::clamp<std::int64_t>(v, -1, n - 1);
        };
        start = clamp(start);
        stop = clamp(stop);
        List out;
        for (std::int64_t i = start; step > 0 ? i < stop : i > stop;) {
            out.push_back(items[static_cast<std::size_t>(i)]);
            if (__builtin_add_overflow(i, step, &i)) break;
        }
        if (obj.is_list()) return Value(std::move(out));
        std::string s;
        for (const Value& c : out) s += c.as_string();
        return Value(std::move(s));
    }

    Value eval(const Expr& e)
    {
        step(e.pos);
        switch (e.kind) {
        case Expr::Literal: return e.value;
        case Expr::Name: return lookup(e.name);
        case Expr::GetAttr: {
            const Value obj = eval(*e.args[0]);
            require_defined(obj, e.pos);
            if (obj.is_list() && !e.name.empty() && std::isdigit(static_cast<unsigned char>(e.name[0]))) {
                if (e.name.size() > 18) return Value::undefined(e.name);
                return index(obj, Value(static_cast<std::int64_t>(std::stoll(e.name))), e.pos);
            }
            const Value* v = obj.find(e.name);
            return v ? *v : Value::undefined(e.name);
        }
        case Expr::GetItem: {
            const Value obj = eval(*e.args[0]);
            return index(obj, eval(*e.args[1]), e.pos);
        }
        case Expr::Slice: return slice(e);
        case Expr::Call: return call(e);
        case Expr::Filter: return filter(e);
        case Expr::Test: return Value(test(e) != e.negated);
        case Expr::Not: return Value(!eval(*e.args[0]).truthy());
        case Expr::Neg:
        case Expr::Pos: {
            const Value v = eval(*e.args[0]);
            if (!v.is_number()) fail(e.pos, fmt::format("bad operand type for unary {}: {}", e.kind == Expr::Neg ? '-' : '+', v.type_name()));
            if (e.kind == Expr::Pos) return v;
            if (v.is_float()) return Value(-v.as_float());
            std::int64_t r;
            if (__builtin_sub_overflow(std::int64_t{0}, v.as_int(), &r)) fail(e.pos, "integer overflow");
            return Value(r);
        }
        case Expr::Binary: return binary(e);
        case Expr::Compare: {
            Value left = eval(*e.args[0]);
            for (std::size_t k = 0; k < e.ops.size(); ++k) {
                Value right = eval(*e.args[k + 1]);
                if (!compare(e.ops[k], left, right, e.pos)) return Value(false);
                left = std::move(right);
            }
            return Value(true);
        }
        case Expr::And: {
            Value a = eval(*e.args[0]);
            return a.truthy() ? eval(*e.args[1]) : a;
        }
        case Expr::Or: {
            Value a = eval(*e.args[0]);
            return a.truthy() ? a : eval(*e.args[1]);
        }
        case Expr::CondExpr:
            if (eval(*e.args[1]).truthy()) return eval(*e.args[0]);
            return e.args[2] ? eval(*e.args[2]) : Value::undefined("else");
        case Expr::ListLit: {
            List l;
            for (const auto& a : e.args) l.push_back(eval(*a));
            return Value(std::move(l));
        }
        case Expr::DictLit: {
            Dict d;
            for (std::size_t k = 0; k + 1 < e.args.size(); k += 2) {
                const Value key = eval(*e.args[k]);
                if (!key.is_string()) fail(e.pos, "dict keys must be strings");
                d.emplace_back(key.as_string(), eval(*e.args[k + 1]));
            }
            return Value(std::move(d));
        }
        }
        fail(e.pos, "unknown expression");
    }

    bool contains(const Value& container, const Value& item, SourcePos pos)
    {
        if (container.is_string()) {
            if (!item.is_string()) fail(pos, "'in <string>' requires a string on the left");
            return container.as_string().find(item.as_string()) != std::string::npos;
        }
        if (container.is_list())
            return std::any_of(container.as_list().begin(), container.as_list().end(),
                               [&](const Value& v) { return equals(v, item); });
        if (container.is_dict() || container.is_namespace()) return item.is_string() && container.find(item.as_string());
        if (container.is_undefined()) return false;
        fail(pos, fmt::format("argument of type {} is not a container", container.type_name()));
    }

    bool compare(const std::string& op, const Value& a, const Value& b, SourcePos pos)
    {
        if (op == "==") return equals(a, b);
        if (op == "!=") return !equals(a, b);
        if (op == "in") return contains(b, a, pos);
        if (op == "not in") return !contains(b, a, pos);
        int c;
        if (a.is_number() && b.is_number()) {
            c = a.as_float() < b.as_float() ? -1 : a.as_float() > b.as_float() ? 1 : 0;
        } else if (a.is_string() && b.is_string()) {
            c = a.as_string().compare(b.as_string());
        } else {
            fail(pos, fmt::format("'{}' not supported between {} and {}", op, a.type_name(), b.type_name()));
        }
        if (op == "<") return c < 0;
        if (op == "<=") return c <= 0;
        if (op == ">") return c > 0;
        return c >= 0;
    }

    Value binary(const Expr& e)
    {
        const Value a = eval(*e.args[0]);
        const Value b = eval(*e.args[1]);
        const std::string& op = e.name;
        if (op == "~") return Value(a.str() + b.str());
        auto type_error = [&]() -> Value {
            if (a.is_undefined()) require_defined(a, e.pos);
            if (b.is_undefined()) require_defined(b, e.pos);
            fail(e.pos, fmt::format("unsupported operand types for {}: {} and {}", op, a.type_name(), b.type_name()));
        };
        if (op == "+") {
            if (a.is_string() && b.is_string()) {
                if (a.as_string().size() + b.as_string().size() > kMaxOutputBytes)
                    fail(e.pos, fmt::format("string exceeds {} bytes", kMaxOutputBytes));
                return Value(a.as_string() + b.as_string());
            }
            if (a.is_list() && b.is_list()) {
                List l = a.as_list();
                l.insert(l.end(), b.as_list().begin(), b.as_list().end());
                return Value(std::move(l));
            }
        }
        if (op == "*" && ((a.is_string() && b.is_int()) || (a.is_int() && b.is_string()))) {
            const std::string& s = a.is_string() ? a.as_string() : b.as_string();
            const std::int64_t times = std::max<std::int64_t>(0, a.is_int() ? a.as_int() : b.as_int());
            if (static_cast<double>(s.size()) * static_cast<double>(times) > kMaxOutputBytes)
                fail(e.pos, fmt::format("string exceeds {} bytes", kMaxOutputBytes));
            std::string out;
            for (std::int64_t k = 0; k < times; ++k) out += s;
            return Value(std::move(out));
        }
        if (!a.is_number() || !b.is_number()) return type_error();
        const bool ints = !a.is_float() && !b.is_float();
        if (op == "/") {
            if (b.as_float() == 0.0) fail(e.pos, "division by zero");
            return Value(a.as_float() / b.as_float());
        }
        if (op == "//" || op == "%") {
            if (b.as_float() == 0.0) fail(e.pos, "division by zero");
            if (ints) {
                const std::int64_t x = a.as_int(), y = b.as_int();
                if (y == -1 && x == std::numeric_limits<std::int64_t>::min()) fail(e.pos, "integer overflow");
                std::int64_t q = x / y, r = x % y;
                if (r != 0 && ((r < 0) != (y < 0))) {
                    --q;
                    r += y;
                }
                return Value(op == "//" ? q : r);
            }
            const double q = std::floor(a.as_float() / b.as_float());
            return Value(op == "//" ? q : a.as_float() - q * b.as_float());
        }
        if (op == "**") {
            if (ints && b.as_int() >= 0) {
                const std::int64_t base = a.as_int(), n = b.as_int();
                std::int64_t r = 1;
                if (base == 0 || base == 1) r = n == 0 ? 1 : base;
                else if (base == -1) r = n % 2 ? -1 : 1;
                else  // |base| >= 2 overflows within 63 multiplications
                    for (std::int64_t k = 0; k < n; ++k)
                        if (__builtin_mul_overflow(r, base, &r)) fail(e.pos, "integer overflow");
                return Value(r);
            }
            return Value(std::pow(a.as_float(), b.as_float()));
        }
        if (ints) {
            std::int64_t r = 0;
            bool overflow = false;
            if (op == "+") overflow = __builtin_add_overflow(a.as_int(), b.as_int(), &r);
            else if (op == "-") overflow = __builtin_sub_overflow(a.as_int(), b.as_int(), &r);
            else if (op == "*") overflow = __builtin_mul_overflow(a.as_int(), b.as_int(), &r);
            else return type_error();
            if (overflow) fail(e.pos, "integer overflow");
            return Value(r);
        } else {
            if (op == "+") return Value(a.as_float() + b.as_float());
            if (op == "-") return Value(a.as_float() - b.as_float());
            if (op == "*") return Value(a.as_float() * b.as_float());
        }
        return type_error();
    }

    std::vector<Value> eval_args(const Expr& e)
    {
        std::vector<Value> args;
        for (std::size_t k = 1; k < e.args.size(); ++k) args.push_back(eval(*e.args[k]));
        return args;
    }

    Value kwarg(const Expr& e, const std::vector<Value>& args, std::size_t position, const char* name, Value fallback)
    {
        if (position < args.size()) return args[position];
        for (const auto& [k, v] : e.kwargs)
            if (k == name) return eval(*v);
        return fallback;
    }

    static std::string strip(const std::string& s, bool left, bool right, const Value& chars)
    {
        auto strip_char = [&](char c) {
            return chars.is_string() ? chars.as_string().find(c) != std::string::npos : is_py_space(c);
        };
        std::size_t b = 0, e = s.size();
        if (left)
            while (b < e && strip_char(s[b])) ++b;
        if (right)
            while (e > b && strip_char(s[e - 1])) --e;
        return s.substr(b, e - b);
    }

    static std::string ascii_case(std::string s, bool upper)
    {
        for (char& c : s)
            c = static_cast<char>(upper ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)));
        return s;
    }

    static std::string replace_all(const std::string& s, const std::string& from, const std::string& to)
    {
        if (from.empty()) return s;
        std::string out;
        std::size_t pos = 0, at;
        while ((at = s.find(from, pos)) != std::string::npos) {
            out.append(s, pos, at - pos);
            out += to;
            pos = at + from.size();
        }
        out.append(s, pos);
        return out;
    }

    Value call(const Expr& e)
    {
        const Expr& callee = *e.args[0];
        std::vector<Value> args = eval_args(e);
        if (callee.kind == Expr::GetAttr) {
            const Value obj = eval(*callee.args[0]);
            require_defined(obj, callee.pos);
            return method(obj, callee.name, args, e);
        }
        const Value f = eval(callee);
        if (f.is_macro()) return call_macro(f.as_macro(), args, e);
        if (callee.kind == Expr::Name && f.is_undefined()) {
            const std::string& name = callee.name;
            if (name == "namespace") {
                auto ns = std::make_shared<Namespace>();
                for (const auto& [k, v] : e.kwargs) ns->attrs.emplace_back(k, eval(*v));
                return Value(std::move(ns));
            }
            if (name == "raise_exception")
                fail(e.pos, "raise_exception: " + (args.empty() ? std::string() : args[0].str()));
            if (name == "range") {
                for (const Value& a : args)
                    if (!a.is_int()) fail(e.pos, "range() arguments must be integers");
                std::int64_t start = 0, stop = 0, stride = 1;
                if (args.size() == 1) stop = args[0].as_int();
                else if (args.size() >= 2) start = args[0].as_int(), stop = args[1].as_int();
                if (args.size() == 3) stride = args[2].as_int();
                if (args.empty() || args.size() > 3 || stride == 0) fail(e.pos, "bad range() arguments");
                List l;
                for (std::int64_t i = start; stride > 0 ? i < stop : i > stop;) {
                    step(e.pos);
                    if (static_cast<std::int64_t>(l.size()) >= kMaxRange)
                        fail(e.pos, fmt::format("range() longer than {}", kMaxRange));
                    l.emplace_back(i);
                    if (__builtin_add_overflow(i, stride, &i)) break;
                }
                return Value(std::move(l));
            }
            fail(e.pos, fmt::format("unknown function '{}'", name));
        }
        fail(e.pos, fmt::format("{} is not callable", f.type_name()));
    }

    Value call_macro(const Macro& m, const std::vector<Value>& args, const Expr& e)
    {
        if (m_call_depth >= kMaxCallDepth)
            fail(e.pos, fmt::format("macro '{}': recursion deeper than {} calls", m.name, kMaxCallDepth));
        const Stmt& def = *m.definition;
        if (args.size() > def.params.size())
            fail(e.pos, fmt::format("macro '{}' takes {} arguments, {} given", m.name, def.params.size(), args.size()));
        Frame frame;
        for (std::size_t k = 0; k < def.params.size(); ++k) {
            const auto& [pname, pdefault] = def.params[k];
            Value v = Value::undefined(pname);
            if (k < args.size()) v = args[k];
            else {
                bool found = false;
                for (const auto& [kn, kv] : e.kwargs)
                    if (kn == pname) {
                        v = eval(*kv);
                        found = true;
                    }
                if (!found && pdefault) v = eval(*pdefault);
            }
            frame.emplace_back(pname, std::move(v));
        }
        const std::size_t saved_floor = m_floor;
        std::string saved_out = std::move(m_out);
        m_out.clear();
        m_frames.push_back(std::move(frame));
        m_floor = m_frames.size() - 1;
        ++m_call_depth;
        exec(def.body);
        --m_call_depth;
        m_frames.pop_back();
        m_floor = saved_floor;
        std::string result = std::move(m_out);
        m_out = std::move(saved_out);
        return Value(std::move(result));
    }

    Value method(const Value& obj, const std::string& name, const std::vector<Value>& args, const Expr& e)
    {
        if (obj.is_string()) {
            const std::string& s = obj.as_string();
            const Value a0 = args.empty() ? Value(None{}) : args[0];
            if (name == "strip") return Value(strip(s, true, true, a0));
            if (name == "lstrip") return Value(strip(s, true, false, a0));
            if (name == "rstrip") return Value(strip(s, false, true, a0));
            if (name == "upper") return Value(ascii_case(s, true));
            if (name == "lower") return Value(ascii_case(s, false));
            if (name == "startswith" || name == "endswith") {
                List candidates = a0.is_list() ? a0.as_list() : List{a0};
                for (const Value& c : candidates) {
                    if (!c.is_string()) fail(e.pos, fmt::format("{}() needs strings", name));
                    const std::string& p = c.as_string();
                    if (p.size() <= s.size() &&
                        (name == "startswith" ? s.compare(0, p.size(), p) == 0 : s.compare(s.size() - p.size(), p.size(), p) == 0))
                        return Value(true);
                }
                return Value(false);
            }
            if (name == "replace" && args.size() == 2 && args[0].is_string() && args[1].is_string())
                return Value(replace_all(s, args[0].as_string(), args[1].as_string()));
            if (name == "split") {
                List parts;
                std::int64_t max_split = args.size() > 1 && args[1].is_int() ? args[1].as_int() : -1;
                if (a0.is_none()) {
                    std::size_t i = 0;
                    while (i < s.size()) {
                        while (i < s.size() && is_py_space(s[i])) ++i;
                        if (i >= s.size()) break;
                        std::size_t j = i;
                        if (max_split == 0) j = s.size();
                        else while (j < s.size() && !is_py_space(s[j])) ++j;
                        std::string part = s.substr(i, j - i);
                        if (max_split == 0) part = strip(part, false, true, Value(None{}));
                        parts.emplace_back(std::move(part));
                        if (max_split > 0) --max_split;
                        i = j;
                    }
                    return Value(std::move(parts));
                }
                if (!a0.is_string() || a0.as_string().empty()) fail(e.pos, "split() separator must be a non-empty string");
                const std::string& sep = a0.as_string();
                std::size_t pos = 0, at;
                while (max_split != 0 && (at = s.find(sep, pos)) != std::string::npos) {
                    parts.emplace_back(s.substr(pos, at - pos));
                    pos = at + sep.size();
                    if (max_split > 0) --max_split;
                }
                parts.emplace_back(s.substr(pos));
                return Value(std::move(parts));
            }
        } else if (obj.is_dict()) {
            if (name == "items") {
                List l;
                for (const auto& [k, v] : obj.as_dict()) l.emplace_back(List{Value(k), v});
                return Value(std::move(l));
            }
            if (name == "keys" || name == "values") {
                List l;
                for (const auto& [k, v] : obj.as_dict()) l.push_back(name == "keys" ? Value(k) : v);
                return Value(std::move(l));
            }
            if (name == "get" && !args.empty()) {
                const Value* v = args[0].is_string() ? obj.find(args[0].as_string()) : nullptr;
                return v ? *v : (args.size() > 1 ? args[1] : Value(None{}));
            }
        }
        fail(e.pos, fmt::format("{} has no supported method '{}'", obj.type_name(), name));
    }

    std::string to_json(const Value& v, SourcePos pos)
    {
        if (v.is_none() || v.is_undefined()) return "null";
        if (v.is_bool()) return v.as_bool() ? "true" : "false";
        if (v.is_int() || v.is_float()) return v.str();
        if (v.is_string()) return json_quote(v.as_string());
        if (v.is_list()) {
            std::string out = "[";
            for (std::size_t i = 0; i < v.as_list().size(); ++i) out += (i ? ", " : "") + to_json(v.as_list()[i], pos);
            return out + "]";
        }
        if (v.is_dict() || v.is_namespace()) {
            const Dict& d = v.is_dict() ? v.as_dict() : v.as_namespace().attrs;
            std::string out = "{";
            for (std::size_t i = 0; i < d.size(); ++i)
                out += (i ? ", " : "") + json_quote(d[i].first) + ": " + to_json(d[i].second, pos);
            return out + "}";
        }
        fail(pos, fmt::format("{} is not JSON serializable", v.type_name()));
    }

    Value filter(const Expr& e)
    {
        const Value v = eval(*e.args[0]);
        const std::vector<Value> args = eval_args(e);
        const std::string& name = e.name;
        if (name == "default" || name == "d") {
            const bool boolean = kwarg(e, args, 1, "boolean", Value(false)).truthy();
            if (v.is_undefined() || (boolean && !v.truthy())) return kwarg(e, args, 0, "default_value", Value(""));
            return v;
        }
        if (name == "length" || name == "count") {
            if (v.is_string()) return Value(static_cast<std::int64_t>(utf8_chars(v.as_string()).size()));
            if (v.is_list()) return Value(static_cast<std::int64_t>(v.as_list().size()));
            if (v.is_dict()) return Value(static_cast<std::int64_t>(v.as_dict().size()));
            if (v.is_undefined()) return Value(0);
            fail(e.pos, fmt::format("object of type {} has no length", v.type_name()));
        }
        if (name == "string") return Value(v.str());
        if (name == "tojson") return Value(to_json(v, e.pos));
        require_defined(v, e.pos);
        if (name == "trim") return Value(strip(v.str(), true, true, kwarg(e, args, 0, "chars", Value(None{}))));
        if (name == "upper") return Value(ascii_case(v.str(), true));
        if (name == "lower") return Value(ascii_case(v.str(), false));
        if (name == "capitalize") {
            std::string s = ascii_case(v.str(), false);
            if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
            return Value(std::move(s));
        }
        if (name == "int") {
            if (v.is_int() || v.is_bool()) return Value(v.as_int());
            if (v.is_float()) {
                const double d = v.as_float();
                if (!(d > -9.2e18 && d < 9.2e18)) fail(e.pos, "float out of integer range");
                return Value(static_cast<std::int64_t>(d));
            }
            try {
                return Value(static_cast<std::int64_t>(std::stoll(v.str())));
            } catch (const std::exception&) {
                return kwarg(e, args, 0, "default", Value(0));
            }
        }
        if (name == "replace" && args.size() >= 2)
            return Value(replace_all(v.str(), args[0].str(), args[1].str()));
        if (name == "items" && v.is_dict()) return method(v, "items", {}, e);
        if (name == "list") return Value(iterate(v, e.pos));
        if (name == "join") {
            const std::string sep = kwarg(e, args, 0, "d", Value("")).str();
            std::string out;
            const List items = iterate(v, e.pos);
            for (std::size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i].str();
            return Value(std::move(out));
        }
        if (name == "first" || name == "last") {
            const List items = iterate(v, e.pos);
            if (items.empty()) return Value::undefined(name);
            return name == "first" ? items.front() : items.back();
        }
        fail(e.pos, fmt::format("unsupported filter '{}'", name));
    }

    bool test(const Expr& e)
    {
        const Value v = eval(*e.args[0]);
        const std::vector<Value> args = eval_args(e);
        const std::string& name = e.name;
        if (name == "defined") return !v.is_undefined();
        if (name == "undefined") return v.is_undefined();
        if (name == "none") return v.is_none();
        if (name == "true") return v.is_bool() && v.as_bool();
        if (name == "false") return v.is_bool() && !v.as_bool();
        if (name == "boolean") return v.is_bool();
        if (name == "string") return v.is_string();
        if (name == "number") return v.is_int() || v.is_float();
        if (name == "integer") return v.is_int();
        if (name == "float") return v.is_float();
        if (name == "mapping") return v.is_dict();
        if (name == "sequence" || name == "iterable") return v.is_list() || v.is_string() || v.is_dict();
        if (name == "callable") return v.is_macro();
        if (name == "even" || name == "odd") {
            if (!v.is_int()) fail(e.pos, fmt::format("'{}' test needs an integer", name));
            return (v.as_int() % 2 == 0) == (name == "even");
        }
        if (name == "divisibleby") {
            if (args.empty() || !args[0].is_int() || args[0].as_int() == 0 || !v.is_int())
                fail(e.pos, "'divisibleby' needs a non-zero integer");
            return v.as_int() % args[0].as_int() == 0;
        }
        if ((name == "eq" || name == "equalto" || name == "sameas") && !args.empty()) return equals(v, args[0]);
        if (name == "ne" && !args.empty()) return !equals(v, args[0]);
        if (name == "in" && !args.empty()) return contains(args[0], v, e.pos);
        fail(e.pos, fmt::format("unsupported test '{}'", name));
    }

    Dict m_globals;
    std::vector<Frame> m_frames;
    std::size_t m_floor = 0;  // lowest frame visible besides the root (macro calls)
    std::string m_out;
    std::uint64_t m_steps = 0;
    int m_call_depth = 0;
};

Value message_value(const ChatMessage& m)
{
    Dict d = {{"role", Value(m.role)}, {"content", m.content ? Value(*m.content) : Value(None{})}};
    if (!m.tool_calls.empty()) {
        List calls;
        for (const ChatToolCall& c : m.tool_calls)
            calls.emplace_back(Dict{{"type", Value(c.type)},
                                    {"function", Value(Dict{{"name", Value(c.name)}, {"arguments", Value(c.arguments)}})}});
        d.emplace_back("tool_calls", Value(std::move(calls)));
    }
    return Value(std::move(d));
}

}  // namespace

ChatTemplate::ChatTemplate(const std::string& source, std::string bos_token, std::string eos_token)
{
    auto impl = std::make_shared<Impl>();
    impl->tmpl = parse_template(source);
    impl->bos_token = std::move(bos_token);
    impl->eos_token = std::move(eos_token);
    m_impl = std::move(impl);
}

ChatTemplate ChatTemplate::from_tokenizer(const Tokenizer& tokenizer)
{
    if (tokenizer.chat_template().empty())
        throw TokenizerError(fmt::format("{}: no chat_template in tokenizer_config.json beside it", tokenizer.path()));
    try {
        return ChatTemplate(tokenizer.chat_template(), tokenizer.bos_token(), tokenizer.eos_token());
    } catch (const TokenizerError& e) {
        throw TokenizerError(fmt::format("{} (tokenizer_config.json): {}", tokenizer.path(), e.what()));
    }
}

namespace {

std::string render_with(const Template& t, const std::string& bos, const std::string& eos, Value messages,
                        bool add_generation_prompt, Dict extra)
{
    // What transformers passes to the template: the messages, tools/documents
    // (None when absent), add_generation_prompt and the special tokens.
    Dict globals = {{"messages", std::move(messages)},
                    {"tools", Value(None{})},
                    {"documents", Value(None{})},
                    {"add_generation_prompt", Value(add_generation_prompt)},
                    {"bos_token", Value(bos)},
                    {"eos_token", Value(eos)}};
    for (auto& [key, v] : extra) {
        const std::string& k = key;  // clang 14 cannot capture a structured binding (P1091, clang 16)
        auto it = std::find_if(globals.begin(), globals.end(), [&](const auto& kv) { return kv.first == k; });
        if (it != globals.end()) it->second = std::move(v);
        else globals.emplace_back(k, std::move(v));
    }
    return Interpreter(std::move(globals)).run(t);
}

}  // namespace

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const
{
    List list;
    for (const ChatMessage& m : messages) list.push_back(message_value(m));
    return render_with(m_impl->tmpl, m_impl->bos_token, m_impl->eos_token, Value(std::move(list)),
                       add_generation_prompt, {});
}

std::string ChatTemplate::render_json(std::string_view messages_json, bool add_generation_prompt,
                                      std::string_view extra_json) const
{
    nlohmann::ordered_json messages, extra;
    try {
        messages = nlohmann::ordered_json::parse(messages_json);
        if (!extra_json.empty()) extra = nlohmann::ordered_json::parse(extra_json);
    } catch (const nlohmann::json::exception& e) {
        throw TokenizerError(fmt::format("chat template input is not valid JSON: {}", e.what()));
    }
    if (!messages.is_array()) throw TokenizerError("chat template input: messages must be a JSON array");
    if (!extra.is_null() && !extra.is_object()) throw TokenizerError("chat template input: extra variables must be a JSON object");
    Dict extra_vars;
    if (extra.is_object())
        for (const auto& [k, v] : extra.items()) extra_vars.emplace_back(k, from_json(v));
    return render_with(m_impl->tmpl, m_impl->bos_token, m_impl->eos_token, from_json(messages), add_generation_prompt,
                       std::move(extra_vars));
}

}  // namespace moelens
