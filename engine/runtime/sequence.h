#pragma once
// What one sequence owns inside a scheduler: its tokens, its blocks of the paged
// latent cache, the logits of its last fed token and, when the model lives on a
// GPU, its cache there.
#include <memory>
#include <vector>

#include "device/device_model.h"
#include "moelens/generation.h"
#include "runtime/latent_pool.h"

namespace moelens {

struct SequenceState {
    std::vector<int> tokens;  // fed so far; position of the next token = tokens.size()
    BlockTable blocks;        // its rows in the pool (CPU models)
    std::vector<float> logits;  // [vocab], valid when has_logits
    bool has_logits = false;
    AttentionPath attention = AttentionPath::absorbed;
    int max_tokens = 0;       // context limit
    std::unique_ptr<DeviceSequence> device;  // GPU models: the cache on the device

    int position() const { return static_cast<int>(tokens.size()); }
};

}  // namespace moelens
