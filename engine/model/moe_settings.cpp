// The router's what-if settings: resolving, checking, parsing and describing them.
#include "moelens/moe_settings.h"

#include <algorithm>
#include <charconv>
#include <set>

#include "moelens/error.h"

namespace moelens {
namespace {

bool group_limited(const ModelConfig& c) { return c.topk_method == TopkMethod::group_limited_greedy && c.n_group > 1; }

int parse_int(std::string_view s, std::string_view item)
{
    int v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v < 0)
        throw Error("disabled expert '" + std::string(item) + "' is not LAYER:EXPERT (two non-negative integers)");
    return v;
}

}  // namespace

bool MoeSettings::is_default(const ModelConfig& c) const
{
    return effective_experts_per_token(c, *this) == c.num_experts_per_tok &&
           effective_device_limit(c, *this) == (group_limited(c) ? c.topk_group : 1) && disabled.empty();
}

int effective_experts_per_token(const ModelConfig& c, const MoeSettings& s)
{
    return s.experts_per_token > 0 ? s.experts_per_token : c.num_experts_per_tok;
}

int effective_device_limit(const ModelConfig& c, const MoeSettings& s)
{
    if (!group_limited(c)) return 1;
    return s.device_limit > 0 ? s.device_limit : c.topk_group;
}

void check_moe_settings(const ModelConfig& c, const MoeSettings& s)
{
    const bool moe = c.n_routed_experts > 0;
    if (!moe && (s.experts_per_token != 0 || s.device_limit != 0 || !s.disabled.empty()))
        throw Error("MoE settings were given, but the model is dense (n_routed_experts = 0)");
    if (!moe) return;
    const int E = c.n_routed_experts;
    if (s.experts_per_token < 0 || s.experts_per_token > E)
        throw Error("experts per token " + std::to_string(s.experts_per_token) + " is outside 1.." + std::to_string(E) +
                    " (the model's routed experts)");
    if (s.device_limit != 0) {
        if (!group_limited(c))
            throw Error("device limit " + std::to_string(s.device_limit) +
                        " needs group-limited routing; the model routes greedily over all " + std::to_string(E) + " experts");
        if (s.device_limit < 1 || s.device_limit > c.n_group)
            throw Error("device limit " + std::to_string(s.device_limit) + " is outside 1.." + std::to_string(c.n_group) +
                        " (the model's expert groups)");
    }
    const int K = effective_experts_per_token(c, s);
    const int M = effective_device_limit(c, s);
    const int groups = group_limited(c) ? c.n_group : 1;
    const int per_group = E / groups;
    // Enabled experts per (layer, group).
    std::set<std::pair<int, int>> seen;
    std::vector<std::vector<int>> enabled(static_cast<std::size_t>(c.num_hidden_layers));
    for (const DisabledExpert& d : s.disabled) {
        if (d.layer < 0 || d.layer >= c.num_hidden_layers || !c.is_moe_layer(d.layer))
            throw Error("disabled expert " + std::to_string(d.layer) + ":" + std::to_string(d.expert) + ": layer " +
                        std::to_string(d.layer) + " is not a MoE layer of the model");
        if (d.expert < 0 || d.expert >= E)
            throw Error("disabled expert " + std::to_string(d.layer) + ":" + std::to_string(d.expert) + ": expert ids are 0.." +
                        std::to_string(E - 1));
        if (!seen.insert({d.layer, d.expert}).second)
            throw Error("disabled expert " + std::to_string(d.layer) + ":" + std::to_string(d.expert) + " is listed twice");
        auto& counts = enabled[static_cast<std::size_t>(d.layer)];
        if (counts.empty()) counts.assign(static_cast<std::size_t>(groups), per_group);
        --counts[static_cast<std::size_t>(d.expert / per_group)];
    }
    // Whatever M groups the gate keeps must hold K enabled experts: check the M
    // groups with the fewest (groups with none enabled are never kept).
    for (int l = 0; l < c.num_hidden_layers; ++l) {
        std::vector<int> counts = enabled[static_cast<std::size_t>(l)];
        if (counts.empty()) counts.assign(static_cast<std::size_t>(groups), per_group);
        std::erase(counts, 0);
        std::sort(counts.begin(), counts.end());
        int available = 0;
        for (int g = 0; g < std::min<int>(M, static_cast<int>(counts.size())); ++g) available += counts[static_cast<std::size_t>(g)];
        if (c.is_moe_layer(l) && available < K)
            throw Error("layer " + std::to_string(l) + " would have " + std::to_string(available) + " experts to choose " +
                        std::to_string(K) + " from" + (groups > 1 ? " in its " + std::to_string(M) + " least-enabled groups" : "") +
                        ": enable more experts or choose fewer per token");
    }
}

std::vector<DisabledExpert> parse_disabled_experts(std::string_view text)
{
    std::vector<DisabledExpert> out;
    while (!text.empty()) {
        const std::size_t comma = text.find(',');
        const std::string_view item = text.substr(0, comma);
        const std::size_t colon = item.find(':');
        if (colon == std::string_view::npos)
            throw Error("disabled expert '" + std::string(item) + "' is not LAYER:EXPERT (two non-negative integers)");
        out.push_back({parse_int(item.substr(0, colon), item), parse_int(item.substr(colon + 1), item)});
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
        if (text.empty()) throw Error("the disabled expert list ends with a comma");
    }
    return out;
}

std::string format_disabled_experts(const std::vector<DisabledExpert>& disabled)
{
    std::string s;
    for (const DisabledExpert& d : disabled) {
        if (!s.empty()) s += ',';
        s += std::to_string(d.layer) + ":" + std::to_string(d.expert);
    }
    return s;
}

std::vector<std::string> describe_moe_settings(const ModelConfig& c, const MoeSettings& s)
{
    std::vector<std::string> out;
    const int K = effective_experts_per_token(c, s);
    if (K != c.num_experts_per_tok) out.push_back(std::to_string(K) + " of " + std::to_string(c.n_routed_experts) + " experts");
    if (group_limited(c) && effective_device_limit(c, s) != c.topk_group) out.push_back("M = " + std::to_string(effective_device_limit(c, s)));
    if (s.disabled.size() > 3) {
        out.push_back(std::to_string(s.disabled.size()) + " experts off");
    } else {
        for (const DisabledExpert& d : s.disabled)
            out.push_back(std::string(1, 'e').append(std::to_string(d.expert)).append(" off in layer ").append(std::to_string(d.layer)));
    }
    return out;
}

std::uint64_t active_parameters(const ModelInfo& info, const MoeSettings& s)
{
    const ModelConfig& c = info.config;
    if (c.n_routed_experts == 0) return info.active_params_per_token;
    const std::int64_t per_expert = 3LL * c.hidden_size * c.moe_intermediate_size;  // gate, up, down
    const std::int64_t delta = static_cast<std::int64_t>(effective_experts_per_token(c, s) - c.num_experts_per_tok) *
                               static_cast<std::int64_t>(info.moe_layers.size()) * per_expert;
    return static_cast<std::uint64_t>(static_cast<std::int64_t>(info.active_params_per_token) + delta);
}

}  // namespace moelens
