// The AVX-512 set with VNNI: a q8 block of 64 weights is one vpdpbusd (u8
// weights x s8 activations into 16 s32 lanes).
// GCC 12 reports the intentionally undefined vectors inside its own intrinsics
// (_mm512_undefined_ps in _mm512_cvtepi32_ps and others) as uninitialised once
// they are inlined: GCC bug 105593, fixed in GCC 13.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "cpu/simd/kernels.h"
#include "moelens/safetensors.h"

namespace moelens::cpu::simd {
namespace {

#define MOELENS_SIMD_TARGET \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512bf16,avx2,fma,f16c")))

struct Isa {
    using V = __m512;
    static constexpr int W = 16;
    static constexpr int GemmRows = 4;  // 4 x 6 accumulators + 4 weight vectors + x: 29 of 32 registers
    static constexpr int GemmTokens = 6;

    static constexpr int ColVectors = 4;  // column tiles (attention values, transposed GEMM): 4 vectors wide

    MOELENS_SIMD_TARGET static V add(V a, V b) { return _mm512_add_ps(a, b); }
    MOELENS_SIMD_TARGET static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
    MOELENS_SIMD_TARGET static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
    MOELENS_SIMD_TARGET static V div(V a, V b) { return _mm512_div_ps(a, b); }
    MOELENS_SIMD_TARGET static V max(V a, V b) { return _mm512_max_ps(a, b); }
    MOELENS_SIMD_TARGET static V min(V a, V b) { return _mm512_min_ps(a, b); }
    MOELENS_SIMD_TARGET static V round(V v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
    // p * 2^n for integral n in [-126, 127].
    MOELENS_SIMD_TARGET static V ldexp(V p, V n) { return _mm512_scalef_ps(p, n); }

    MOELENS_SIMD_TARGET static V zero() { return _mm512_setzero_ps(); }
    MOELENS_SIMD_TARGET static V set1(float f) { return _mm512_set1_ps(f); }
    MOELENS_SIMD_TARGET static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
    MOELENS_SIMD_TARGET static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    MOELENS_SIMD_TARGET static float reduce(V v) { return _mm512_reduce_add_ps(v); }
    // The lane sums of a[0..W) as one vector (lane i = the sum of a[i]), in about
    // three operations per input where W separate reductions take eight.
    MOELENS_SIMD_TARGET static V reduce_each(const V* a)
    {
        V q[4];
        for (int g = 0; g < 4; ++g) {  // per 128-bit lane: the partial sums of a[4g .. 4g+4)
            const V* b = a + 4 * g;
            const V s01 = _mm512_add_ps(_mm512_unpacklo_ps(b[0], b[1]), _mm512_unpackhi_ps(b[0], b[1]));
            const V s23 = _mm512_add_ps(_mm512_unpacklo_ps(b[2], b[3]), _mm512_unpackhi_ps(b[2], b[3]));
            q[g] = _mm512_add_ps(_mm512_shuffle_ps(s01, s23, _MM_SHUFFLE(1, 0, 1, 0)),
                                 _mm512_shuffle_ps(s01, s23, _MM_SHUFFLE(3, 2, 3, 2)));
        }
        // Then the four 128-bit lanes of each q[g] added together.
        const V s = _mm512_add_ps(_mm512_shuffle_f32x4(q[0], q[1], _MM_SHUFFLE(1, 0, 1, 0)),
                                  _mm512_shuffle_f32x4(q[0], q[1], _MM_SHUFFLE(3, 2, 3, 2)));
        const V t = _mm512_add_ps(_mm512_shuffle_f32x4(q[2], q[3], _MM_SHUFFLE(1, 0, 1, 0)),
                                  _mm512_shuffle_f32x4(q[2], q[3], _MM_SHUFFLE(3, 2, 3, 2)));
        return _mm512_add_ps(_mm512_shuffle_f32x4(s, t, _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(s, t, _MM_SHUFFLE(3, 1, 3, 1)));
    }
    MOELENS_SIMD_TARGET static V load(TF32, const float* p) { return _mm512_loadu_ps(p); }
    MOELENS_SIMD_TARGET static V load(TBF16, const std::uint16_t* p)
    {
        const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
        return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    }
    // 2W bf16 weights in one load: each 32-bit lane holds an even-indexed weight in
    // its low half and an odd-indexed one in its high half, so a shift and a mask
    // widen both without shuffles.
    MOELENS_SIMD_TARGET static V bf16_even(const std::uint16_t* p)
    {
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_loadu_si512(reinterpret_cast<const __m512i*>(p)), 16));
    }
    MOELENS_SIMD_TARGET static V bf16_odd(const std::uint16_t* p)
    {
        return _mm512_castsi512_ps(_mm512_and_si512(_mm512_loadu_si512(reinterpret_cast<const __m512i*>(p)), _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
    }
    MOELENS_SIMD_TARGET static V load(TF16, const std::uint16_t* p)
    {
        return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    }
    MOELENS_SIMD_TARGET static V q8_block(const std::uint8_t* q, const std::int8_t* a)
    {
        return _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_loadu_si512(q), _mm512_loadu_si512(a)));
    }
};

#include "cpu/simd/kernels_impl.inc"

}  // namespace

const KernelSet& avx512_vnni_kernels()
{
    static const KernelSet k{SimdLevel::avx512_vnni, matvec_f32, matvec_bf16, matvec_f16, matvec_q8,
                             gemm_f32,               gemm_bf16,  gemm_f16,    gemm_q8,
                             matvec_t_f32,           matvec_t_bf16, matvec_t_f16,
                             gemm_t_f32, gemm_t_bf16, gemm_t_f16, attention_partial, silu_mul};
    return k;
}

}  // namespace moelens::cpu::simd
