#pragma once
// Dense products with stored weights (f32, f16 or bf16) and f32 activations,
// accumulated in f32: the precise mode's projections, and the fallback when
// cuBLAS is not available. Hugging Face layout: W [rows, cols], y = x W^T.
#include <cuda_runtime_api.h>

#include "cuda/kernels/elem_type.h"

namespace moelens::cuda {

struct WeightRef {
    const void* data = nullptr;  // device pointer
    ElemType type = ElemType::bf16;
    int rows = 0;
    int cols = 0;
};

// y[t][r] = sum_c W[r][c] x[t][c] for n tokens: x [n, cols], y [n, rows].
// Twin: ref::matvec, per token.
void matmul(const WeightRef& w, const float* x, int n, float* y, cudaStream_t stream);

// Per-head products over row blocks of one matrix (MLA's absorbed W_UV): for
// h < n_heads, r < rows_per_head: y[h*rows_per_head + r] =
// W[h*head_row_stride + head_row_offset + r] . x[h*x_head_stride ...].
void matvec_heads(const WeightRef& w, int n_heads, int rows_per_head, int head_row_stride, int head_row_offset,
                  const float* x, int x_head_stride, float* y, cudaStream_t stream);

// Transposed per-head products (MLA's absorbed W_UK): for h < n_heads, c < cols:
// y[h*cols + c] = sum_{r < rows_per_head} W[h*head_row_stride + r][c] x[h*x_head_stride + r].
// Twin: ref::matvec_transposed on each head's row slice.
void matvec_transposed_heads(const WeightRef& w, int n_heads, int rows_per_head, int head_row_stride, const float* x,
                             int x_head_stride, float* y, cudaStream_t stream);

}  // namespace moelens::cuda
