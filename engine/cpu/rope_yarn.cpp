#include "cpu/kernels.h"

namespace moelens::cpu {

// Interleaved pairs (x[2i], x[2i+1]) rotate by angle p*inv_freq[i], as DeepSeek's
// reference (view_as_complex over adjacent pairs). cos/sin already carry the YaRN
// mscale factor and the position (runtime/rope_table.cpp).
void rope(float* x, int n_vectors, int stride, int dr, const float* cos, const float* sin)
{
    for (int v = 0; v < n_vectors; ++v) {
        float* p = x + static_cast<std::size_t>(v) * stride;
        for (int i = 0; i < dr / 2; ++i) {
            const float a = p[2 * i], b = p[2 * i + 1];
            p[2 * i] = a * cos[i] - b * sin[i];
            p[2 * i + 1] = a * sin[i] + b * cos[i];
        }
    }
}

}  // namespace moelens::cpu
