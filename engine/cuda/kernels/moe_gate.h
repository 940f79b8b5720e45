#pragma once
#include <cuda_runtime_api.h>

#include "backend/cuda_plugin_abi.h"

namespace moelens::cuda {

// The DeepSeekMoE router after the gate projection: the engine's RouteParams,
// one C struct of the plugin ABI.
using GateParams = MoelensRouteParams;

// For each of n_tokens tokens: probs[t] = softmax(logits[t]) over n_experts, then
// ids[t][top_k] and weights[t][top_k] in descending score order, with exactly the
// selection and tie rules of cpu/moe_route.cpp (ties go to the lowest index;
// groups score their best expert). logits and probs may alias.
// Twins: ref::softmax + ref::moe_route. n_experts <= 1024, top_k <= 32.
void moe_gate_topk(const float* logits, int n_tokens, const GateParams& p, float* probs, int* ids, float* weights,
                   cudaStream_t stream);

}  // namespace moelens::cuda
