#pragma once
// What one sequence owns inside a scheduler: its tokens, its blocks of the paged
// latent cache, the logits of its last fed token and, when the model lives on a
// GPU, its cache there.
#include <cstdint>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "device/device_model.h"
#include "moelens/expert_traffic.h"
#include "moelens/generation.h"
#include "moelens/moe_settings.h"
#include "runtime/latent_pool.h"

namespace moelens {

// How a sequence's tokens are routed (moelens/moe_settings.h), resolved once when
// it is opened.
struct SequenceRouting {
    MoeSettings settings;                // K and M resolved, disabled experts sorted
    RouteParams params;                  // the model's, with top_k = K and topk_group = M
    std::vector<std::uint8_t> disabled;  // [MoE layer index][n_experts]; empty when none is
    const std::uint8_t* disabled_in(int moe_index) const
    {
        return disabled.empty() ? nullptr : disabled.data() + static_cast<std::size_t>(moe_index) * params.n_experts;
    }
};

struct SequenceState {
    std::vector<int> tokens;  // fed so far; position of the next token = tokens.size()
    BlockTable blocks;        // its rows in the pool (CPU models)
    std::vector<float> logits;  // [vocab], valid when has_logits
    bool has_logits = false;
    AttentionPath attention = AttentionPath::absorbed;
    int max_tokens = 0;       // context limit
    SequenceRouting routing;
    int home_device = 0;      // with virtual devices: where its attention and rows live
    ExpertTraffic traffic;    // with virtual devices: its current generation's (moelens/scheduler.h)
    std::unique_ptr<DeviceSequence> device;  // GPU models: the cache on the device

    int position() const { return static_cast<int>(tokens.size()); }
};

}  // namespace moelens
