#pragma once
// Plain scalar twins of the CPU kernels, written for obviousness (double
// accumulation, no blocking, sorting instead of scans). The kernel tests compare
// the optimised kernels against these; keep them plain.
#include <vector>

#include "backend/backend.h"

namespace moelens::ref {

float weight_at(const WeightView& w, int r, int c);
void matvec(const WeightView& w, const float* x, float* y);
void matvec_transposed(const WeightView& w, const float* x, float* y);
void rmsnorm(const float* x, const float* weight, int n, float eps, float* y);
void rope(float* x, int n_vectors, int stride, int dr, const float* cos, const float* sin);
void softmax(float* x, int n);
void silu_mul(float* gate, const float* up, int n);
void moe_route(const float* probs, const RouteParams& p, int* ids, float* weights, const std::uint8_t* disabled = nullptr);
void attention_mla_absorbed(const float* q_lat, const float* q_pe, const LatentCacheView& cache, const MlaDims& d,
                            float* out_lat);
void attention_mla_naive(const float* q, const float* kv, const LatentCacheView& cache, const MlaDims& d, float* out);

}  // namespace moelens::ref
