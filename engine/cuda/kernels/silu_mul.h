#pragma once
#include <cuda_runtime_api.h>

namespace moelens::cuda {

// gate[i] = silu(gate[i]) * up[i] over n floats (all tokens at once: the buffers
// are contiguous). Twin: ref::silu_mul.
void silu_mul(float* gate, const float* up, long long n, cudaStream_t stream);

}  // namespace moelens::cuda
