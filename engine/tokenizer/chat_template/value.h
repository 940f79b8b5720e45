#pragma once
// Values of the chat-template interpreter, with Python/Jinja2 semantics where a
// template can observe them (truthiness, str(), ==, ordering).
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace moelens::chat_template {

class Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;  // insertion-ordered, like a Python dict
struct Macro;

struct Undefined {
    std::string name;  // what was looked up, for error messages
};
struct None {};
// namespace(): the one mutable object (set ns.attr = ...).
struct Namespace {
    Dict attrs;
};

class Value {
public:
    using Storage = std::variant<Undefined, None, bool, std::int64_t, double, std::string, std::shared_ptr<const List>,
                                 std::shared_ptr<const Dict>, std::shared_ptr<Namespace>, std::shared_ptr<const Macro>>;

    Value() : m_v(Undefined{}) {}
    Value(None) : m_v(None{}) {}
    Value(bool b) : m_v(b) {}
    Value(std::int64_t i) : m_v(i) {}
    Value(int i) : m_v(std::int64_t{i}) {}
    Value(double d) : m_v(d) {}
    Value(std::string s) : m_v(std::move(s)) {}
    Value(const char* s) : m_v(std::string(s)) {}
    Value(List l) : m_v(std::make_shared<const List>(std::move(l))) {}
    Value(Dict d) : m_v(std::make_shared<const Dict>(std::move(d))) {}
    Value(std::shared_ptr<Namespace> ns) : m_v(std::move(ns)) {}
    Value(std::shared_ptr<const Macro> m) : m_v(std::move(m)) {}
    static Value undefined(std::string name) { Value v; v.m_v = Undefined{std::move(name)}; return v; }

    bool is_undefined() const { return std::holds_alternative<Undefined>(m_v); }
    bool is_none() const { return std::holds_alternative<None>(m_v); }
    bool is_bool() const { return std::holds_alternative<bool>(m_v); }
    bool is_int() const { return std::holds_alternative<std::int64_t>(m_v); }
    bool is_float() const { return std::holds_alternative<double>(m_v); }
    bool is_number() const { return is_int() || is_float() || is_bool(); }
    bool is_string() const { return std::holds_alternative<std::string>(m_v); }
    bool is_list() const { return std::holds_alternative<std::shared_ptr<const List>>(m_v); }
    bool is_dict() const { return std::holds_alternative<std::shared_ptr<const Dict>>(m_v); }
    bool is_namespace() const { return std::holds_alternative<std::shared_ptr<Namespace>>(m_v); }
    bool is_macro() const { return std::holds_alternative<std::shared_ptr<const Macro>>(m_v); }

    bool as_bool() const { return std::get<bool>(m_v); }
    std::int64_t as_int() const { return is_bool() ? std::int64_t{as_bool()} : std::get<std::int64_t>(m_v); }
    double as_float() const { return is_float() ? std::get<double>(m_v) : static_cast<double>(as_int()); }
    const std::string& as_string() const { return std::get<std::string>(m_v); }
    const List& as_list() const { return *std::get<std::shared_ptr<const List>>(m_v); }
    const Dict& as_dict() const { return *std::get<std::shared_ptr<const Dict>>(m_v); }
    Namespace& as_namespace() const { return *std::get<std::shared_ptr<Namespace>>(m_v); }
    const Macro& as_macro() const { return *std::get<std::shared_ptr<const Macro>>(m_v); }
    const std::string& undefined_name() const { return std::get<Undefined>(m_v).name; }

    // Python truthiness.
    bool truthy() const;
    // Python str() (what {{ }} prints); an undefined value prints as "".
    std::string str() const;
    // Python repr(), used inside containers.
    std::string repr() const;
    // Python type name, for error messages.
    std::string type_name() const;

    // Lookup in a dict or namespace; nullptr if absent or not a mapping.
    const Value* find(const std::string& key) const;

private:
    Storage m_v;
};

// Python ==.
bool equals(const Value& a, const Value& b);

}  // namespace moelens::chat_template
