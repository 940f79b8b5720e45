#pragma once
// RoPE frequencies with YaRN scaling (arXiv 2309.00071) and its attention-scale
// correction, computed once per model; cos/sin once per position.
#include <vector>

#include "moelens/model.h"

namespace moelens {

struct RopeFrequencies {
    std::vector<float> inv_freq;  // [dr/2]
    float cos_sin_scale = 1.0f;   // M(f, mscale) / M(f, mscale_all_dim)
    float softmax_scale = 0.0f;   // (dn + dr)^-0.5 * M(f, mscale_all_dim)^2
};

RopeFrequencies rope_frequencies(const ModelConfig& c);
// cos[i], sin[i] of angle pos * inv_freq[i], times cos_sin_scale.
void rope_cos_sin(const RopeFrequencies& f, int pos, float* cos, float* sin);

}  // namespace moelens
