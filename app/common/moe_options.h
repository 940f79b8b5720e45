#pragma once
// The router's what-if flags shared by moelens-cli and moelens-bench
// (moelens/moe_settings.h):
//   --experts-per-token K        routed experts per token (the model's top-k by default)
//   --device-limit M             expert groups a token may draw from (group-limited models)
//   --disable-experts L:E,...    experts switched off, by decoder layer and expert id
// The values are checked against the model once it is loaded (check_moe_settings),
// with messages naming the value and its limit. Header-only like device_options.h.
#include <set>
#include <string>

#include "args.h"
#include "moelens/error.h"
#include "moelens/moe_settings.h"

namespace moelens::cli {

inline const char* moe_options_usage() { return "[--experts-per-token K] [--device-limit M] [--disable-experts L:E,...]"; }

inline std::set<std::string> with_moe_options(std::set<std::string> valued)
{
    valued.insert({"experts-per-token", "device-limit", "disable-experts"});
    return valued;
}

// The flags as given (not yet checked against a model: see check_moe_flags).
inline MoeSettings moe_settings_from(const Args& args)
{
    MoeSettings s;
    const long long k = args.get_int("experts-per-token", 0);
    if (args.get("experts-per-token") && (k < 1 || k > 65535)) throw UsageError("--experts-per-token must be at least 1");
    s.experts_per_token = static_cast<int>(k);
    const long long m = args.get_int("device-limit", 0);
    if (args.get("device-limit") && (m < 1 || m > 65535)) throw UsageError("--device-limit must be at least 1");
    s.device_limit = static_cast<int>(m);
    if (auto list = args.get("disable-experts")) {
        try {
            s.disabled = parse_disabled_experts(*list);
        } catch (const Error& e) {
            throw UsageError(std::string("--disable-experts: ") + e.what());
        }
    }
    return s;
}

// Against the loaded model: a usage error naming the flag's value and its limit.
inline void check_moe_flags(const ModelConfig& c, const MoeSettings& s)
{
    try {
        check_moe_settings(c, s);
    } catch (const Error& e) {
        throw UsageError(std::string("MoE settings: ") + e.what());
    }
}

// What the router does, for --stats lines: the labels of what differs from the
// model ("2 of 16 experts, M = 1"), or the model's own top-k.
inline std::string routing_summary(const ModelConfig& c, const MoeSettings& s)
{
    std::string out;
    for (const std::string& label : describe_moe_settings(c, s)) out += (out.empty() ? "" : ", ") + label;
    if (out.empty())
        out = "the model's own (" + std::to_string(c.num_experts_per_tok) + " of " + std::to_string(c.n_routed_experts) + " experts)";
    return out;
}

}  // namespace moelens::cli
