#pragma once
// The peak-rate FMA loop of each kernel set: `iterations` rounds of independent
// multiply-add chains held in registers. Returns the FLOPs done (2 per
// multiply-add) and a value derived from the results, so the loop is not removed.
#include <cstdint>

#include "cpu/simd/cpu_features.h"

namespace moelens::cpu::simd {

std::uint64_t fma_chains(SimdLevel level, std::uint64_t iterations, float* sink);

}  // namespace moelens::cpu::simd
