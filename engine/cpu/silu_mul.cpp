#include <cmath>

#include "cpu/kernels.h"

namespace moelens::cpu {

// The SiLU-gated FFN's elementwise step: silu(gate) * up, silu(g) = g / (1 + e^-g).
void silu_mul(float* gate, const float* up, int n)
{
    for (int i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void axpy(float* y, float a, const float* x, int n)
{
    for (int i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace moelens::cpu
