// The AVX2 + FMA + F16C set (Haswell, Zen 1 and later): 8 floats per vector,
// q8 products through 16-bit widening and vpmaddwd.
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

#define MOELENS_SIMD_TARGET __attribute__((target("avx2,fma,f16c")))

struct Isa {
    using V = __m256;
    static constexpr int W = 8;
    static constexpr int GemmRows = 2;  // 2 x 4 accumulators + 2 weight vectors + x: 11 of 16 registers
    static constexpr int GemmTokens = 4;

    static constexpr int ColVectors = 2;  // column tiles (attention values, transposed GEMM): 2 vectors wide

    MOELENS_SIMD_TARGET static V add(V a, V b) { return _mm256_add_ps(a, b); }
    MOELENS_SIMD_TARGET static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
    MOELENS_SIMD_TARGET static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
    MOELENS_SIMD_TARGET static V div(V a, V b) { return _mm256_div_ps(a, b); }
    MOELENS_SIMD_TARGET static V max(V a, V b) { return _mm256_max_ps(a, b); }
    MOELENS_SIMD_TARGET static V min(V a, V b) { return _mm256_min_ps(a, b); }
    MOELENS_SIMD_TARGET static V round(V v) { return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
    // p * 2^n for integral n in [-126, 127]: n + 127 is the biased exponent of 2^n.
    MOELENS_SIMD_TARGET static V ldexp(V p, V n)
    {
        const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
        return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    }

    MOELENS_SIMD_TARGET static V zero() { return _mm256_setzero_ps(); }
    MOELENS_SIMD_TARGET static V set1(float f) { return _mm256_set1_ps(f); }
    MOELENS_SIMD_TARGET static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
    MOELENS_SIMD_TARGET static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    MOELENS_SIMD_TARGET static float reduce(V v)
    {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        return _mm_cvtss_f32(s);
    }
    // The lane sums of a[0..W) as one vector (lane i = the sum of a[i]).
    MOELENS_SIMD_TARGET static V reduce_each(const V* a)
    {
        // Per 128-bit lane, the partial sums of a[0..4) and of a[4..8), then the two lanes added.
        const V lo = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
        const V hi = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
        return _mm256_add_ps(_mm256_permute2f128_ps(lo, hi, 0x20), _mm256_permute2f128_ps(lo, hi, 0x31));
    }
    MOELENS_SIMD_TARGET static V load(TF32, const float* p) { return _mm256_loadu_ps(p); }
    MOELENS_SIMD_TARGET static V load(TBF16, const std::uint16_t* p)
    {
        const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    }
    // 2W bf16 weights in one load: each 32-bit lane holds an even-indexed weight in
    // its low half and an odd-indexed one in its high half, so a shift and a mask
    // widen both without shuffles.
    MOELENS_SIMD_TARGET static V bf16_even(const std::uint16_t* p)
    {
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), 16));
    }
    MOELENS_SIMD_TARGET static V bf16_odd(const std::uint16_t* p)
    {
        return _mm256_castsi256_ps(_mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), _mm256_set1_epi32(static_cast<int>(0xffff0000u))));
    }
    MOELENS_SIMD_TARGET static V load(TF16, const std::uint16_t* p)
    {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    }
    MOELENS_SIMD_TARGET static V q8_block(const std::uint8_t* q, const std::int8_t* a)
    {
        __m256i d = _mm256_setzero_si256();
        for (int k = 0; k < kQ8Block; k += 16) {
            const __m256i wq = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + k)));
            const __m256i aq = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + k)));
            d = _mm256_add_epi32(d, _mm256_madd_epi16(wq, aq));
        }
        return _mm256_cvtepi32_ps(d);
    }
};

#include "cpu/simd/kernels_impl.inc"

}  // namespace

const KernelSet& avx2_kernels()
{
    static const KernelSet k{SimdLevel::avx2, matvec_f32, matvec_bf16, matvec_f16, matvec_q8,
                             gemm_f32,        gemm_bf16,  gemm_f16,    gemm_q8,
                             matvec_t_f32,    matvec_t_bf16, matvec_t_f16,
                             gemm_t_f32, gemm_t_bf16, gemm_t_f16, attention_partial, silu_mul};
    return k;
}

}  // namespace moelens::cpu::simd
