// Independent FMA chains, enough of them to cover the FMA latency on every
// pipe (Zen 4: 4 cycles x 2 pipes; Intel: 4 x 2), so the loop runs at the
// core's FMA throughput. 12 chains for AVX2 (16 registers), 24 for AVX-512 (32);
// the loops are unrolled explicitly so the chains stay in registers (GCC keeps
// a rolled array of vectors in memory).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "cpu/simd/fma_peak.h"

namespace moelens::cpu::simd {
namespace {

__attribute__((target("avx512f,avx512dq,fma"))) std::uint64_t chains_avx512(std::uint64_t n, float* sink)
{
    constexpr int K = 24;
    __m512 acc[K];
    for (int i = 0; i < K; ++i) acc[i] = _mm512_set1_ps(0.001f * i);
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (std::uint64_t it = 0; it < n; ++it)
#pragma GCC unroll 24
        for (int i = 0; i < K; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    __m512 s = acc[0];
    for (int i = 1; i < K; ++i) s = _mm512_add_ps(s, acc[i]);
    *sink += _mm512_reduce_add_ps(s);
    return n * K * 16 * 2;
}

__attribute__((target("avx2,fma"))) std::uint64_t chains_avx2(std::uint64_t n, float* sink)
{
    constexpr int K = 12;
    __m256 acc[K];
    for (int i = 0; i < K; ++i) acc[i] = _mm256_set1_ps(0.001f * i);
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (std::uint64_t it = 0; it < n; ++it)
#pragma GCC unroll 12
        for (int i = 0; i < K; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    __m256 s = acc[0];
    for (int i = 1; i < K; ++i) s = _mm256_add_ps(s, acc[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    for (float f : out) *sink += f;
    return n * K * 8 * 2;
}

std::uint64_t chains_scalar(std::uint64_t n, float* sink)
{
    constexpr int K = 8;
    float acc[K];
    for (int i = 0; i < K; ++i) acc[i] = 0.001f * i;
    for (std::uint64_t it = 0; it < n; ++it)
#pragma GCC unroll 8
        for (int i = 0; i < K; ++i) acc[i] = acc[i] * 0.999999f + 1e-7f;
    for (float f : acc) *sink += f;
    return n * K * 2;
}

}  // namespace

std::uint64_t fma_chains(SimdLevel level, std::uint64_t iterations, float* sink)
{
    switch (level) {
    case SimdLevel::avx512_vnni:
    case SimdLevel::avx512: return chains_avx512(iterations, sink);
    case SimdLevel::avx2: return chains_avx2(iterations, sink);
    case SimdLevel::scalar: break;
    }
    return chains_scalar(iterations, sink);
}

}  // namespace moelens::cpu::simd
