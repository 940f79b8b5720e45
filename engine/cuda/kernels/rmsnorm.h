#pragma once
#include <cuda_runtime_api.h>

namespace moelens::cuda {

// y[r] = w * x[r] / sqrt(mean(x[r]^2) + eps) for n_rows rows of n floats; y may
// alias x. Twin: ref::rmsnorm.
void rmsnorm(const float* x, const float* w, int n_rows, int n, float eps, float* y, cudaStream_t stream);

// The same over rows that sit x_stride / y_stride floats apart (MLA normalises
// the c_kv part of each [c_kv ; k_pe] row in place).
void rmsnorm_rows(const float* x, int x_stride, const float* w, int n_rows, int n, float eps, float* y, int y_stride,
                  cudaStream_t stream);

}  // namespace moelens::cuda
