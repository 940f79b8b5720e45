#include "tokenizer/chat_template/value.h"

#include <charconv>
#include <cmath>

namespace moelens::chat_template {

bool Value::truthy() const
{
    if (is_undefined() || is_none()) return false;
    if (is_bool()) return as_bool();
    if (is_int()) return as_int() != 0;
    if (is_float()) return as_float() != 0.0;
    if (is_string()) return !as_string().empty();
    if (is_list()) return !as_list().empty();
    if (is_dict()) return !as_dict().empty();
    return true;
}

namespace {

std::string float_str(double d)
{
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
    char buf[64];
    const auto res = std::to_chars(buf, buf + sizeof buf, d);
    std::string s(buf, res.ptr);
    // Python prints integral floats with ".0".
    if (s.find_first_of(".en") == std::string::npos) s += ".0";
    return s;
}

std::string quote(const std::string& s)
{
    const char q = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
    std::string out(1, q);
    for (char c : s) {
        if (c == q || c == '\\') out += '\\';
        if (c == '\n') out += "\\n";
        else if (c == '\t') out += "\\t";
        else if (c == '\r') out += "\\r";
        else out += c;
    }
    out += q;
    return out;
}

}  // namespace

std::string Value::str() const
{
    if (is_undefined()) return "";
    if (is_none()) return "None";
    if (is_bool()) return as_bool() ? "True" : "False";
    if (is_int()) return std::to_string(as_int());
    if (is_float()) return float_str(as_float());
    if (is_string()) return as_string();
    return repr();
}

std::string Value::repr() const
{
    if (is_string()) return quote(as_string());
    if (is_list()) {
        std::string out = "[";
        for (std::size_t i = 0; i < as_list().size(); ++i) out += (i ? ", " : "") + as_list()[i].repr();
        return out + "]";
    }
    if (is_dict() || is_namespace()) {
        const Dict& d = is_dict() ? as_dict() : as_namespace().attrs;
        std::string out = is_dict() ? "{" : "<Namespace {";
        for (std::size_t i = 0; i < d.size(); ++i) out += (i ? ", " : "") + quote(d[i].first) + ": " + d[i].second.repr();
        return out + (is_dict() ? "}" : "}>");
    }
    if (is_macro()) return "<Macro>";
    return str();
}

std::string Value::type_name() const
{
    if (is_undefined()) return "undefined";
    if (is_none()) return "NoneType";
    if (is_bool()) return "bool";
    if (is_int()) return "int";
    if (is_float()) return "float";
    if (is_string()) return "str";
    if (is_list()) return "list";
    if (is_dict()) return "dict";
    if (is_namespace()) return "Namespace";
    return "Macro";
}

const Value* Value::find(const std::string& key) const
{
    const Dict* d = is_dict() ? &as_dict() : is_namespace() ? &as_namespace().attrs : nullptr;
    if (!d) return nullptr;
    for (const auto& [k, v] : *d)
        if (k == key) return &v;
    return nullptr;
}

bool equals(const Value& a, const Value& b)
{
    if (a.is_number() && b.is_number()) {
        if (a.is_float() || b.is_float()) return a.as_float() == b.as_float();
        return a.as_int() == b.as_int();
    }
    if (a.is_string() && b.is_string()) return a.as_string() == b.as_string();
    if (a.is_none() && b.is_none()) return true;
    if (a.is_undefined() && b.is_undefined()) return true;
    if (a.is_list() && b.is_list()) {
        const List &x = a.as_list(), &y = b.as_list();
        if (x.size() != y.size()) return false;
        for (std::size_t i = 0; i < x.size(); ++i)
            if (!equals(x[i], y[i])) return false;
        return true;
    }
    if (a.is_dict() && b.is_dict()) {
        if (a.as_dict().size() != b.as_dict().size()) return false;
        for (const auto& [k, v] : a.as_dict()) {
            const Value* other = b.find(k);
            if (!other || !equals(v, *other)) return false;
        }
        return true;
    }
    if (a.is_namespace() && b.is_namespace()) return &a.as_namespace() == &b.as_namespace();
    return false;
}

}  // namespace moelens::chat_template
