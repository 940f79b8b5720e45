#pragma once
#include <cuda_runtime_api.h>

namespace moelens::cuda {

// y[r] = w * x[r] / sqrt(mean(x[r]^2) + eps) for n_rows rows of n floats; y may
// alias x. Twin: ref::rmsnorm.
void rmsnorm(const float* x, const float* w, int n_rows, int n, float eps, float* y, cudaStream_t stream);

}  // namespace moelens::cuda
