#pragma once
// The CPU kernels, single-threaded over a given range; cpu_backend.cpp spreads
// them over the thread pool. Each has a plain scalar twin in cpu/ref/ that the
// tests compare against.
#include "backend/backend.h"

namespace moelens::cpu {

// y[r] = W[r, :] . x for r in [row_begin, row_end).
void matvec_rows(const WeightView& w, const float* x, float* y, int row_begin, int row_end);
// y[c] = sum_r x[r] W[r, c] for c in [col_begin, col_end).
void matvec_transposed_cols(const WeightView& w, const float* x, float* y, int col_begin, int col_end);
void embedding_row(const WeightView& table, int row, float* y);
void rmsnorm(const float* x, const float* weight, int n, float eps, float* y);
void rope(float* x, int n_vectors, int stride, int dr, const float* cos, const float* sin);
void softmax(float* x, int n);
void silu_mul(float* gate, const float* up, int n);
void axpy(float* y, float a, const float* x, int n);
void moe_route(const float* probs, const RouteParams& p, const std::uint8_t* disabled, int* ids, float* weights, float* scratch);
// Positions [pos_begin, pos_end) of the absorbed MLA attention (see backend.h) for
// all heads, as an online-softmax partial: m [H], l [H], o [H, kv_lora] (see
// simd::KernelSet::attention_partial).
void attention_mla_partial(const float* q_lat, const float* q_pe, const LatentCacheView& cache, const MlaDims& d,
                           int pos_begin, int pos_end, float* m, float* l, float* o);
// out_lat [H, kv_lora] for heads [head_begin, head_end) from `parts` partials of
// disjoint position ranges (partial p at m + p*H, l + p*H, o + p*H*kv_lora).
void attention_mla_merge(const float* m, const float* l, const float* o, int parts, const MlaDims& d, float* out_lat,
                         int head_begin, int head_end);
// Heads [head_begin, head_end) of the naive MLA attention (see backend.h).
void attention_mla_naive(const float* q, const float* kv, const LatentCacheView& cache, const MlaDims& d, float* scores,
                         float* out, int head_begin, int head_end);

}  // namespace moelens::cpu
