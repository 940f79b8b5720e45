#pragma once
// Token permutation by expert and the weighted combine: the routed experts then
// run as one GEMM per expert over a contiguous block of the tokens it received,
// instead of one tiny product per (token, expert).
#include <cuda_runtime_api.h>

namespace moelens::cuda {

// From ids [n_tokens, top_k]: expert_offsets [n_experts + 1] (expert e owns slots
// [offsets[e], offsets[e+1])), slot_of [n_tokens*top_k] (where entry (t, j) went)
// and token_of_slot [n_tokens*top_k]. Within an expert, slots follow (t, j) order,
// so the result is deterministic. n_experts <= 1024.
void moe_permute_plan(const int* ids, int n_tokens, int top_k, int n_experts, int* expert_offsets, int* slot_of,
                      int* token_of_slot, cudaStream_t stream);

// x_perm[s] = x[token_of_slot[s]] for n_slots rows of `cols` floats.
void moe_gather_rows(const float* x, const int* token_of_slot, int n_slots, int cols, float* x_perm,
                     cudaStream_t stream);

// out[t] (+)= sum_j weights[t][j] * y_perm[slot_of[t*top_k + j]], j ascending;
// accumulate = false overwrites out.
void moe_combine(const float* y_perm, const int* slot_of, const float* weights, int n_tokens, int top_k, int cols,
                 float* out, bool accumulate, cudaStream_t stream);

}  // namespace moelens::cuda
