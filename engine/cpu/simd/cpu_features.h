#pragma once
// Which vector instructions this CPU offers, and which kernel set runs. The
// binary is built for plain x86-64; the AVX2 and AVX-512 kernels are compiled
// per function (target attributes) and chosen here at run time, so the same
// executable runs on any x86-64 and uses what the machine has.
namespace moelens::cpu::simd {

struct CpuFeatures {
    bool avx2 = false;
    bool fma = false;
    bool f16c = false;
    bool avx512f = false;
    bool avx512bw = false;
    bool avx512vl = false;
    bool avx512dq = false;
    bool avx512bf16 = false;  // vdpbf16ps: bf16 pair dot products into f32
    bool avx512vnni = false;  // vpdpbusd: u8 x s8 dot products into s32
};

// Kernel sets, from the plain reference up. avx2 needs AVX2, FMA and F16C;
// avx512 adds F, BW, VL and DQ; avx512_vnni adds VNNI (int8 dot products) and
// BF16 (bf16 dot products for prefill).
enum class SimdLevel { scalar, avx2, avx512, avx512_vnni };

const char* simd_level_name(SimdLevel level);
const CpuFeatures& cpu_features();
// The best level this CPU supports.
SimdLevel best_simd_level();
// The level the kernels use: MOELENS_SIMD=scalar|avx2|avx512|avx512_vnni in the environment
// lowers it (never above what the CPU supports); otherwise the best one.
SimdLevel active_simd_level();
// For tests and the benchmark: run with `level` (clamped to what the CPU supports)
// from now on. Not thread-safe against kernels running at the same time.
void set_simd_level(SimdLevel level);
bool simd_level_supported(SimdLevel level);

}  // namespace moelens::cpu::simd
