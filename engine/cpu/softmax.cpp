#include <cmath>

#include "cpu/kernels.h"

namespace moelens::cpu {

void softmax(float* x, int n)
{
    if (n <= 0) return;
    float m = x[0];
    for (int i = 1; i < n; ++i) m = x[i] > m ? x[i] : m;
    float sum = 0.0f;
    for (int i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - m);
        sum += x[i];
    }
    const float inv = 1.0f / sum;
    for (int i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace moelens::cpu
