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

// Routed experts as one grouped product: w.data holds n_groups matrices
// [rows, cols] back to back; group g multiplies the rows [offsets[g], offsets[g+1])
// of x [*, cols] into the same rows of y [*, rows]. offsets live on the device
// (moe_permute_plan writes them), so the grid is sized by max_group_tokens and
// blocks past a group's count return at once: one launch for all experts.
void matmul_grouped(const WeightRef& w, int n_groups, const int* offsets, int max_group_tokens, const float* x,
                    float* y, cudaStream_t stream);

// Per-head products over row blocks of one matrix (MLA's absorbed W_UV), for n
// tokens: y[t][h*rows_per_head + r] = W[h*head_row_stride + head_row_offset + r] .
// x[t*x_token_stride + h*x_head_stride ...].
void matvec_heads(const WeightRef& w, int n_heads, int rows_per_head, int head_row_stride, int head_row_offset,
                  const float* x, int x_head_stride, int n_tokens, int x_token_stride, float* y, cudaStream_t stream);

// Transposed per-head products (MLA's absorbed W_UK), for n tokens: for h < n_heads,
// c < cols: y[t][h*cols + c] = sum_{r < rows_per_head} W[h*head_row_stride + r][c]
// x[t*x_token_stride + h*x_head_stride + r]. Twin: ref::matvec_transposed per head.
void matvec_transposed_heads(const WeightRef& w, int n_heads, int rows_per_head, int head_row_stride, const float* x,
                             int x_head_stride, int n_tokens, int x_token_stride, float* y, cudaStream_t stream);

}  // namespace moelens::cuda
