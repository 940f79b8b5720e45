#include "args.h"

#include <charconv>

namespace moelens::cli {

Args::Args(const std::vector<std::string>& argv, std::set<std::string> valued, std::set<std::string> flags)
{
    for (size_t i = 0; i < argv.size(); ++i) {
        const std::string& a = argv[i];
        if (a.rfind("--", 0) != 0 || a == "--") {
            m_positional.push_back(a);
            continue;
        }
        std::string name = a.substr(2);
        std::optional<std::string> inline_value;
        if (auto eq = name.find('='); eq != std::string::npos) {
            inline_value = name.substr(eq + 1);
            name = name.substr(0, eq);
        }
        if (valued.count(name)) {
            if (inline_value) {
                m_values[name] = *inline_value;
            } else {
                if (i + 1 >= argv.size()) throw UsageError("option --" + name + " needs a value");
                m_values[name] = argv[++i];
            }
        } else if (flags.count(name)) {
            if (inline_value) throw UsageError("option --" + name + " takes no value");
            m_flags.insert(name);
        } else {
            throw UsageError("unknown option --" + name);
        }
    }
}

std::optional<std::string> Args::get(const std::string& name) const
{
    auto it = m_values.find(name);
    if (it == m_values.end()) return std::nullopt;
    return it->second;
}

std::string Args::require(const std::string& name) const
{
    auto v = get(name);
    if (!v) throw UsageError("missing required option --" + name);
    return *v;
}

long long Args::get_int(const std::string& name, long long fallback) const
{
    auto v = get(name);
    if (!v) return fallback;
    long long out = 0;
    auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
    if (ec != std::errc{} || ptr != v->data() + v->size())
        throw UsageError("option --" + name + " expects an integer, got '" + *v + "'");
    return out;
}

double Args::get_double(const std::string& name, double fallback) const
{
    auto v = get(name);
    if (!v) return fallback;
    try {
        size_t used = 0;
        double out = std::stod(*v, &used);
        if (used != v->size()) throw std::invalid_argument("trailing");
        return out;
    } catch (const std::exception&) {
        throw UsageError("option --" + name + " expects a number, got '" + *v + "'");
    }
}

}  // namespace moelens::cli
