#include "cpu/kernels.h"
#include "cpu/simd/kernels.h"

namespace moelens::cpu {

// The SiLU-gated FFN's elementwise step: silu(gate) * up, silu(g) = g / (1 + e^-g),
// in the vector kernel set of this CPU (cpu/simd/).
void silu_mul(float* gate, const float* up, int n) { simd::active_kernels().silu_mul(gate, up, n); }

void axpy(float* y, float a, const float* x, int n)
{
    for (int i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace moelens::cpu
