#pragma once
#include <cuda_runtime_api.h>

namespace moelens::cuda {

// The DeepSeekMoE router after the gate projection, as RouteParams in
// backend/backend.h describes it (plain values, so the header needs no engine types).
struct GateParams {
    int n_experts = 0;
    int top_k = 0;
    bool group_limited = false;  // group_limited_greedy (device-limited routing)
    int n_group = 1;
    int topk_group = 1;
    float routed_scaling_factor = 1.0f;
    bool norm_topk_prob = false;
};

// For each of n_tokens tokens: probs[t] = softmax(logits[t]) over n_experts, then
// ids[t][top_k] and weights[t][top_k] in descending score order, with exactly the
// selection and tie rules of cpu/moe_route.cpp (ties go to the lowest index;
// groups score their best expert). logits and probs may alias.
// Twins: ref::softmax + ref::moe_route. n_experts <= 1024, top_k <= 32.
void moe_gate_topk(const float* logits, int n_tokens, const GateParams& p, float* probs, int* ids, float* weights,
                   cudaStream_t stream);

}  // namespace moelens::cuda
