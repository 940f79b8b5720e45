#include "cpu/simd/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "moelens/logging.h"

namespace moelens::cpu::simd {
namespace {

CpuFeatures detect()
{
    CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
    // F16C has no __builtin_cpu_supports name in GCC 12; every CPU with AVX2 and
    // FMA (Haswell, Zen and later) has it, so it follows from those two.
    f.f16c = f.avx2 && f.fma;
    f.avx512f = __builtin_cpu_supports("avx512f");
    f.avx512bw = __builtin_cpu_supports("avx512bw");
    f.avx512vl = __builtin_cpu_supports("avx512vl");
    f.avx512dq = __builtin_cpu_supports("avx512dq");
    f.avx512bf16 = __builtin_cpu_supports("avx512bf16");
    f.avx512vnni = __builtin_cpu_supports("avx512vnni");
#endif
    return f;
}

SimdLevel from_env(SimdLevel best)
{
    const char* v = std::getenv("MOELENS_SIMD");
    if (!v || !*v) return best;
    SimdLevel want = best;
    if (std::strcmp(v, "scalar") == 0)
        want = SimdLevel::scalar;
    else if (std::strcmp(v, "avx2") == 0)
        want = SimdLevel::avx2;
    else if (std::strcmp(v, "avx512") == 0)
        want = SimdLevel::avx512;
    else if (std::strcmp(v, "avx512_vnni") == 0)
        want = SimdLevel::avx512_vnni;
    else
        engine_log().warn("MOELENS_SIMD='{}' is not one of scalar, avx2, avx512, avx512_vnni; using {}", v, simd_level_name(best));
    return static_cast<int>(want) < static_cast<int>(best) ? want : best;
}

std::atomic<int>& level_slot()
{
    static std::atomic<int> slot{static_cast<int>(from_env(best_simd_level()))};
    return slot;
}

}  // namespace

const char* simd_level_name(SimdLevel level)
{
    switch (level) {
    case SimdLevel::scalar: return "scalar";
    case SimdLevel::avx2: return "avx2";
    case SimdLevel::avx512: return "avx512";
    case SimdLevel::avx512_vnni: return "avx512_vnni";
    }
    return "?";
}

const CpuFeatures& cpu_features()
{
    static const CpuFeatures f = detect();
    return f;
}

bool simd_level_supported(SimdLevel level)
{
    const CpuFeatures& f = cpu_features();
    switch (level) {
    case SimdLevel::scalar: return true;
    case SimdLevel::avx2: return f.avx2 && f.fma && f.f16c;
    case SimdLevel::avx512: return f.avx2 && f.fma && f.f16c && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq;
    case SimdLevel::avx512_vnni: return simd_level_supported(SimdLevel::avx512) && f.avx512vnni && f.avx512bf16;
    }
    return false;
}

SimdLevel best_simd_level()
{
    if (simd_level_supported(SimdLevel::avx512_vnni)) return SimdLevel::avx512_vnni;
    if (simd_level_supported(SimdLevel::avx512)) return SimdLevel::avx512;
    if (simd_level_supported(SimdLevel::avx2)) return SimdLevel::avx2;
    return SimdLevel::scalar;
}

SimdLevel active_simd_level() { return static_cast<SimdLevel>(level_slot().load(std::memory_order_relaxed)); }

void set_simd_level(SimdLevel level)
{
    while (!simd_level_supported(level)) level = static_cast<SimdLevel>(static_cast<int>(level) - 1);
    level_slot().store(static_cast<int>(level), std::memory_order_relaxed);
}

}  // namespace moelens::cpu::simd
