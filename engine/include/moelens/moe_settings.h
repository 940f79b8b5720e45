#pragma once
// What-if settings of the router, per sequence: how many routed experts each token
// uses, how many expert groups (devices) it may draw them from, and experts switched
// off. The model's own values are the default (an empty MoeSettings); a sequence
// with other settings computes its own cache (it never shares a prefix with a
// sequence routed differently).
//
// Semantics, on the reference's MoEGate (DeepSeek-V2 section 2.2): the gate scores
// s = softmax(W_gate h) over all routed experts are computed as always; a disabled
// expert's score is then masked (it can be neither a group's best nor chosen);
// group-limited routing keeps the `device_limit` groups with the best remaining
// score; the top `experts_per_token` of the allowed experts are chosen and
// weighted as the model says (normalised over the chosen when norm_topk_prob,
// else scaled by routed_scaling_factor).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "moelens/model.h"

namespace moelens {

struct DisabledExpert {
    int layer = 0;   // decoder-layer index (a MoE layer)
    int expert = 0;  // routed expert id in that layer
    friend bool operator==(const DisabledExpert&, const DisabledExpert&) = default;
};

struct MoeSettings {
    int experts_per_token = 0;  // K, 1..n_routed_experts; 0 = the model's num_experts_per_tok
    int device_limit = 0;       // M, 1..n_group for group-limited routing; 0 = the model's topk_group
    std::vector<DisabledExpert> disabled;  // each at most once

    // Same routing as the model's own (zeros, the model's own values, nothing disabled).
    bool is_default(const ModelConfig& c) const;
    friend bool operator==(const MoeSettings&, const MoeSettings&) = default;
};

// The K and M that apply (zeros resolved to the model's values).
int effective_experts_per_token(const ModelConfig& c, const MoeSettings& s);
int effective_device_limit(const ModelConfig& c, const MoeSettings& s);

// Throws Error naming the value and its limit: K outside 1..n_routed_experts, M
// outside 1..n_group (or set on a model without group-limited routing), a disabled
// expert in a dense layer or out of range, one listed twice, or a layer (or, with
// group-limited routing, any M of its groups) left with fewer than K experts.
void check_moe_settings(const ModelConfig& c, const MoeSettings& s);

// "L:E,L:E,..." (as moelens-cli --disable-experts takes it) <-> the list. Throws
// Error for anything else, naming the bad item.
std::vector<DisabledExpert> parse_disabled_experts(std::string_view text);
std::string format_disabled_experts(const std::vector<DisabledExpert>& disabled);

// Short labels of what differs from the model, for a compare column:
// "4 of 16 experts", "M = 1", "e12 off in layer 3" (one per disabled expert,
// or "5 experts off" beyond three). Empty for the default.
std::vector<std::string> describe_moe_settings(const ModelConfig& c, const MoeSettings& s);

// Parameters one token reads under the settings: the dense part, the shared
// experts and K routed experts per MoE layer (ModelInfo::active_params_per_token
// is this for the default).
std::uint64_t active_parameters(const ModelInfo& info, const MoeSettings& s);

}  // namespace moelens
