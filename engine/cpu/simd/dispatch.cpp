#include <cstdint>

#include "cpu/simd/kernels.h"

namespace moelens::cpu::simd {

const KernelSet& kernel_set(SimdLevel level)
{
    switch (level) {
    case SimdLevel::avx512_vnni: return avx512_vnni_kernels();
    case SimdLevel::avx512: return avx512_kernels();
    case SimdLevel::avx2: return avx2_kernels();
    case SimdLevel::scalar: break;
    }
    return scalar_kernels();
}

const KernelSet& active_kernels() { return kernel_set(active_simd_level()); }

void matvec_rows(const WeightView& w, const float* x, float* y, int rb, int re)
{
    const KernelSet& k = active_kernels();
    switch (w.dtype) {
    case DType::BF16: k.matvec_bf16(reinterpret_cast<const std::uint16_t*>(w.data), w.cols, x, y, rb, re); break;
    case DType::F16: k.matvec_f16(reinterpret_cast<const std::uint16_t*>(w.data), w.cols, x, y, rb, re); break;
    default: k.matvec_f32(reinterpret_cast<const float*>(w.data), w.cols, x, y, rb, re); break;
    }
}

void gemm_rows(const WeightView& w, const float* x, int ldx, int n, float* y, int ldy, int rb, int re)
{
    const KernelSet& k = active_kernels();
    switch (w.dtype) {
    case DType::BF16:
        k.gemm_bf16(reinterpret_cast<const std::uint16_t*>(w.data), w.cols, x, ldx, n, y, ldy, rb, re);
        break;
    case DType::F16:
        k.gemm_f16(reinterpret_cast<const std::uint16_t*>(w.data), w.cols, x, ldx, n, y, ldy, rb, re);
        break;
    default: k.gemm_f32(reinterpret_cast<const float*>(w.data), w.cols, x, ldx, n, y, ldy, rb, re); break;
    }
}

void matvec_transposed_cols(const WeightView& w, const float* x, float* y, int cb, int ce)
{
    const KernelSet& k = active_kernels();
    const auto* u = reinterpret_cast<const std::uint16_t*>(w.data);
    switch (w.dtype) {
    case DType::BF16: k.matvec_t_bf16(u, w.rows, w.cols, x, y, cb, ce); break;
    case DType::F16: k.matvec_t_f16(u, w.rows, w.cols, x, y, cb, ce); break;
    default: k.matvec_t_f32(reinterpret_cast<const float*>(w.data), w.rows, w.cols, x, y, cb, ce); break;
    }
}

void gemm_transposed_cols(const WeightView& w, const float* x, int ldx, int n, float* y, int ldy, int cb, int ce)
{
    const KernelSet& k = active_kernels();
    const auto* u = reinterpret_cast<const std::uint16_t*>(w.data);
    switch (w.dtype) {
    case DType::BF16: k.gemm_t_bf16(u, w.rows, w.cols, x, ldx, n, y, ldy, cb, ce); break;
    case DType::F16: k.gemm_t_f16(u, w.rows, w.cols, x, ldx, n, y, ldy, cb, ce); break;
    default: k.gemm_t_f32(reinterpret_cast<const float*>(w.data), w.rows, w.cols, x, ldx, n, y, ldy, cb, ce); break;
    }
}

Q8View q8_view(const WeightView& w)
{
    return {reinterpret_cast<const std::uint8_t*>(w.data), w.scales, w.rows, w.cols, q8_blocks(w.cols)};
}

void matvec_q8_rows(const WeightView& w, const Q8Activations& x, float* y, int rb, int re)
{
    active_kernels().matvec_q8(q8_view(w), x, y, rb, re);
}

}  // namespace moelens::cpu::simd
