#pragma once
// The small glue of a forward step: residual adds, dtype conversion, embedding rows.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuda/kernels/elem_type.h"

namespace moelens::cuda {

// y[i] += a * x[i].
void axpy(float* y, float a, const float* x, long long n, cudaStream_t stream);

// Rounds f32 to bf16 (round to nearest even): the fast mode's GEMM inputs.
void f32_to_bf16(const float* x, std::uint16_t* y, long long n, cudaStream_t stream);

// y[t] = row ids[t] of table [rows, cols] (stored as `type`), widened to f32.
void embedding_rows(const void* table, ElemType type, int cols, const int* ids, int n_tokens, float* y,
                    cudaStream_t stream);

}  // namespace moelens::cuda
