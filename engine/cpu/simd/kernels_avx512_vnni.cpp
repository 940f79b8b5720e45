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

#include "cpu/simd/isa_avx512.inc"

struct Isa : Avx512Base {
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
