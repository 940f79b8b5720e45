#pragma once
// Vectorised products of stored-dtype weights with f32 activations, one set per
// SimdLevel, chosen at run time (cpu_features.h). Each set computes the same
// functions; the scalar set is the plain reference the tests compare the others
// against, and the fallback on CPUs without AVX2.
//
//  matvec_*: y[r] = W[r, :] . x                       for r in [rb, re)   (decode)
//  matvec_t_*: y[c] = sum_r x[r] W[r, c]             for c in [cb, ce)
//  gemm_*:   y[t * ldy + r] = W[r, :] . x[t * ldx + :] for t < n, r in [rb, re)
//            (prefill: a block of weight rows is read once for a tile of tokens)
// W is row-major [rows, cols] (row r at w + r * cols). Row ranges let callers
// split the rows over threads; each thread then streams its own part of W.
#include <cstdint>

#include "backend/backend.h"
#include "cpu/simd/cpu_features.h"
#include "cpu/simd/q8.h"

namespace moelens::cpu::simd {

struct KernelSet {
    SimdLevel level = SimdLevel::scalar;

    void (*matvec_f32)(const float* w, int cols, const float* x, float* y, int rb, int re) = nullptr;
    void (*matvec_bf16)(const std::uint16_t* w, int cols, const float* x, float* y, int rb, int re) = nullptr;
    void (*matvec_f16)(const std::uint16_t* w, int cols, const float* x, float* y, int rb, int re) = nullptr;
    // x: vector 0 of the activations, quantised with quantize_activations.
    void (*matvec_q8)(const Q8View& w, const Q8Activations& x, float* y, int rb, int re) = nullptr;

    void (*gemm_f32)(const float* w, int cols, const float* x, int ldx, int n, float* y, int ldy, int rb,
                     int re) = nullptr;
    void (*gemm_bf16)(const std::uint16_t* w, int cols, const float* x, int ldx, int n, float* y, int ldy, int rb,
                      int re) = nullptr;
    void (*gemm_f16)(const std::uint16_t* w, int cols, const float* x, int ldx, int n, float* y, int ldy, int rb,
                     int re) = nullptr;
    // x: all x.n vectors.
    void (*gemm_q8)(const Q8View& w, const Q8Activations& x, float* y, int ldy, int rb, int re) = nullptr;

    // Transposed (absorbing W_UK into the query): y[c] = sum_r x[r] W[r, c] for c in [cb, ce).
    void (*matvec_t_f32)(const float* w, int rows, int cols, const float* x, float* y, int cb, int ce) = nullptr;
    void (*matvec_t_bf16)(const std::uint16_t* w, int rows, int cols, const float* x, float* y, int cb,
                          int ce) = nullptr;
    void (*matvec_t_f16)(const std::uint16_t* w, int rows, int cols, const float* x, float* y, int cb,
                         int ce) = nullptr;

    // Transposed, for n tokens: y[t * ldy + c] = sum_r x[t * ldx + r] W[r, c] for t < n, c in [cb, ce).
    void (*gemm_t_f32)(const float* w, int rows, int cols, const float* x, int ldx, int n, float* y, int ldy, int cb,
                       int ce) = nullptr;
    void (*gemm_t_bf16)(const std::uint16_t* w, int rows, int cols, const float* x, int ldx, int n, float* y, int ldy,
                        int cb, int ce) = nullptr;
    void (*gemm_t_f16)(const std::uint16_t* w, int rows, int cols, const float* x, int ldx, int n, float* y, int ldy,
                       int cb, int ce) = nullptr;

    // Absorbed MLA over positions [sb, se) of one layer's latent cache (rows of
    // cache.stride floats: c [dc] then k_pe [dr], in blocks) for heads [hb, he), in one pass with an online softmax.
    // With score_s = scale * (q_lat_h . c_s + q_pe_h . k_pe_s) it leaves, per head,
    //   m[h] = max_s score_s,  l[h] = sum_s e^(score_s - m[h]),
    //   o[h * dc + c] = sum_s e^(score_s - m[h]) c_s[c]   (not divided by l).
    // Partials of disjoint position ranges merge by rescaling to a common maximum
    // (cpu::attention_mla_merge), so threads can split the positions. An empty range
    // leaves m = -inf, l = 0, o = 0.
    void (*attention_partial)(const float* q_lat, const float* q_pe, const LatentCacheView& cache, int sb, int se,
                              int dc, int dr, float scale, float* m, float* l, float* o, int hb, int he) = nullptr;
    // gate[i] = silu(gate[i]) * up[i] for i < n (the SiLU-gated FFN's elementwise step).
    void (*silu_mul)(float* gate, const float* up, int n) = nullptr;
};

// Stored-dtype tags the vector sets use to pick a widening load.
struct TF32 {
    using T = float;
};
struct TBF16 {
    using T = std::uint16_t;
};
struct TF16 {
    using T = std::uint16_t;
};

// The set for `level`; the level must be supported by this CPU (simd_level_supported).
const KernelSet& kernel_set(SimdLevel level);
// The set for active_simd_level().
const KernelSet& active_kernels();

// Dispatch on the stored dtype (F32, F16 or BF16) with the active set.
void matvec_rows(const WeightView& w, const float* x, float* y, int rb, int re);
void gemm_rows(const WeightView& w, const float* x, int ldx, int n, float* y, int ldy, int rb, int re);
void matvec_transposed_cols(const WeightView& w, const float* x, float* y, int cb, int ce);
void gemm_transposed_cols(const WeightView& w, const float* x, int ldx, int n, float* y, int ldy, int cb, int ce);
// The same for int8 weights (DType::U8, see backend.h) and quantised activations.
Q8View q8_view(const WeightView& w);
void matvec_q8_rows(const WeightView& w, const Q8Activations& x, float* y, int rb, int re);

// Per-level definitions (kernels_<level>.cpp).
const KernelSet& scalar_kernels();
const KernelSet& avx2_kernels();
const KernelSet& avx512_kernels();
const KernelSet& avx512_vnni_kernels();

}  // namespace moelens::cpu::simd
