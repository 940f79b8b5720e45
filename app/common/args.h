#pragma once
// A small, strict command-line parser for moelens-cli subcommands: `--name value`,
// `--name=value` and boolean `--flag`. Unknown options are errors (a typo must not
// silently change what a script computes).
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace moelens::cli {

class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Args {
public:
    // `valued` lists options that take a value, `flags` those that do not.
    Args(const std::vector<std::string>& argv, std::set<std::string> valued, std::set<std::string> flags);

    bool flag(const std::string& name) const { return m_flags.count(name) != 0; }
    std::optional<std::string> get(const std::string& name) const;
    std::string require(const std::string& name) const;
    long long get_int(const std::string& name, long long fallback) const;
    double get_double(const std::string& name, double fallback) const;
    const std::vector<std::string>& positional() const { return m_positional; }

private:
    std::map<std::string, std::string> m_values;
    std::set<std::string> m_flags;
    std::vector<std::string> m_positional;
};

}  // namespace moelens::cli
