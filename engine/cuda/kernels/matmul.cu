#include <string>

#include "cuda/kernels/cuda_error.h"
#include "cuda/kernels/elem_load.cuh"
#include "cuda/kernels/matmul.h"
#include "cuda/kernels/reduce.cuh"

namespace moelens::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kTokens = 8;  // tokens per block: each weight row is read once for up to 8 tokens

struct RowMap {
    int rows_per_group;   // output rows per head (all rows when ungrouped)
    int group_row_stride; // weight rows between heads
    int group_row_offset; // first weight row inside a head
    int x_group_stride;   // floats between heads' inputs
};

// Grouped (expert) products: blockIdx.z picks the matrix and its token range.
struct TokenGroups {
    const int* offsets = nullptr;    // [n_groups + 1] on the device; null = one group of n tokens
    std::size_t matrix_elems = 0;    // elements between consecutive matrices
};

// One warp per output row; lanes stride the columns (16-byte loads when the row
// allows), so at one token this runs at the weights' read bandwidth, which is all
// a decode step's projection can do.
template <ElemType T, bool kVec>
__global__ void __launch_bounds__(kWarps * 32) matmul_kernel(const typename Elem<T>::type* __restrict__ w, int cols,
                                                             int out_rows, RowMap map, TokenGroups groups,
                                                             const float* __restrict__ x, int x_stride, int n,
                                                             float* __restrict__ y)
{
    using E = typename Elem<T>::type;
    constexpr int V = kVec ? static_cast<int>(16 / sizeof(E)) : 1;
    const int i = blockIdx.x * kWarps + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    int t0 = blockIdx.y * kTokens;
    if (groups.offsets) {
        const int first = groups.offsets[blockIdx.z];
        n = groups.offsets[blockIdx.z + 1] - first;
        if (t0 >= n) return;
        w += blockIdx.z * groups.matrix_elems;
        x += static_cast<std::size_t>(first) * x_stride;
        y += static_cast<std::size_t>(first) * out_rows;
    }
    if (i >= out_rows) return;
    const int g = i / map.rows_per_group;
    const std::size_t wrow = static_cast<std::size_t>(g) * map.group_row_stride + map.group_row_offset + i % map.rows_per_group;
    const E* wr = w + wrow * cols;
    const float* xg = x + static_cast<std::size_t>(g) * map.x_group_stride;
    const int nt = min(kTokens, n - t0);
    float acc[kTokens] = {};
    for (int c = lane * V; c < cols; c += 32 * V) {
        float wv[V];
        if constexpr (kVec) {
            const uint4 raw = *reinterpret_cast<const uint4*>(wr + c);
            const E* e = reinterpret_cast<const E*>(&raw);
#pragma unroll
            for (int v = 0; v < V; ++v) wv[v] = Elem<T>::load(e, v);
        } else {
            wv[0] = Elem<T>::load(wr, c);
        }
#pragma unroll
        for (int t = 0; t < kTokens; ++t) {
            if (t >= nt) break;
            const float* xt = xg + static_cast<std::size_t>(t0 + t) * x_stride + c;
#pragma unroll
            for (int v = 0; v < V; ++v) acc[t] += wv[v] * xt[v];
        }
    }
#pragma unroll
    for (int t = 0; t < kTokens; ++t) {
        if (t >= nt) break;
        const float s = warp_sum(acc[t]);
        if (lane == 0) y[static_cast<std::size_t>(t0 + t) * out_rows + i] = s;
    }
}

// grid (column blocks, heads, tokens); consecutive threads read consecutive
// columns of each weight row, so the rows stream through once per token.
template <ElemType T>
__global__ void matvec_transposed_heads_kernel(const typename Elem<T>::type* __restrict__ w, int cols,
                                               int rows_per_head, int head_row_stride, const float* __restrict__ x,
                                               int x_head_stride, int x_token_stride, float* __restrict__ y)
{
    const int h = blockIdx.y, t = blockIdx.z;
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    const float* xh = x + static_cast<std::size_t>(t) * x_token_stride + static_cast<std::size_t>(h) * x_head_stride;
    const std::size_t row0 = static_cast<std::size_t>(h) * head_row_stride;
    float acc = 0.0f;
    for (int r = 0; r < rows_per_head; ++r) acc += Elem<T>::load(w, (row0 + r) * cols + c) * xh[r];
    y[(static_cast<std::size_t>(t) * gridDim.y + h) * cols + c] = acc;
}

template <ElemType T>
void launch_rows(const WeightRef& w, int out_rows, const RowMap& map, const TokenGroups& groups, int n_groups,
                 const float* x, int x_stride, int n, float* y, cudaStream_t stream)
{
    using E = typename Elem<T>::type;
    const dim3 grid((out_rows + kWarps - 1) / kWarps, (n + kTokens - 1) / kTokens, n_groups);
    const auto* wp = static_cast<const E*>(w.data);
    // 16-byte weight loads need every row to start on a 16-byte boundary
    // (cudaMalloc aligns the base) and a whole number of chunks per row.
    if ((w.cols * sizeof(E)) % 16 == 0)
        matmul_kernel<T, true><<<grid, kWarps * 32, 0, stream>>>(wp, w.cols, out_rows, map, groups, x, x_stride, n, y);
    else
        matmul_kernel<T, false><<<grid, kWarps * 32, 0, stream>>>(wp, w.cols, out_rows, map, groups, x, x_stride, n, y);
    check_launch("matmul_kernel");
}

void dispatch_rows(const WeightRef& w, int out_rows, const RowMap& map, const TokenGroups& groups, int n_groups,
                   const float* x, int x_stride, int n, float* y, cudaStream_t stream)
{
    switch (w.type) {
    case ElemType::f32: return launch_rows<ElemType::f32>(w, out_rows, map, groups, n_groups, x, x_stride, n, y, stream);
    case ElemType::f16: return launch_rows<ElemType::f16>(w, out_rows, map, groups, n_groups, x, x_stride, n, y, stream);
    case ElemType::bf16: return launch_rows<ElemType::bf16>(w, out_rows, map, groups, n_groups, x, x_stride, n, y, stream);
    case ElemType::fp8_e4m3: break;
    }
    throw CudaError("matmul_kernel: weights of type " + std::string(elem_type_name(w.type)) + " are not supported");
}

}  // namespace

void matmul(const WeightRef& w, const float* x, int n, float* y, cudaStream_t stream)
{
    if (n <= 0 || w.rows <= 0) return;
    dispatch_rows(w, w.rows, RowMap{w.rows, 0, 0, 0}, TokenGroups{}, 1, x, w.cols, n, y, stream);
}

void matmul_grouped(const WeightRef& w, int n_groups, const int* offsets, int max_group_tokens, const float* x,
                    float* y, cudaStream_t stream)
{
    if (n_groups <= 0 || max_group_tokens <= 0 || w.rows <= 0) return;
    if (n_groups > 65535)
        throw CudaError("matmul_kernel (grouped): " + std::to_string(n_groups) + " groups exceed the grid's 65535");
    const TokenGroups groups{offsets, static_cast<std::size_t>(w.rows) * w.cols};
    dispatch_rows(w, w.rows, RowMap{w.rows, 0, 0, 0}, groups, n_groups, x, w.cols, max_group_tokens, y, stream);
}

void matvec_heads(const WeightRef& w, int n_heads, int rows_per_head, int head_row_stride, int head_row_offset,
                  const float* x, int x_head_stride, int n_tokens, int x_token_stride, float* y, cudaStream_t stream)
{
    if (n_heads <= 0 || rows_per_head <= 0 || n_tokens <= 0) return;
    if ((n_heads - 1) * head_row_stride + head_row_offset + rows_per_head > w.rows)
        throw CudaError("matmul_kernel (heads): row blocks reach past the matrix's " + std::to_string(w.rows) + " rows");
    dispatch_rows(w, n_heads * rows_per_head, RowMap{rows_per_head, head_row_stride, head_row_offset, x_head_stride},
                  TokenGroups{}, 1, x, x_token_stride, n_tokens, y, stream);
}

void matvec_transposed_heads(const WeightRef& w, int n_heads, int rows_per_head, int head_row_stride, const float* x,
                             int x_head_stride, int n_tokens, int x_token_stride, float* y, cudaStream_t stream)
{
    if (n_heads <= 0 || w.cols <= 0 || n_tokens <= 0) return;
    if ((n_heads - 1) * head_row_stride + rows_per_head > w.rows)
        throw CudaError("matvec_transposed_heads_kernel: row blocks reach past the matrix's " + std::to_string(w.rows) +
                        " rows");
    const dim3 grid((w.cols + 127) / 128, n_heads, n_tokens);
    switch (w.type) {
    case ElemType::f32:
        matvec_transposed_heads_kernel<ElemType::f32><<<grid, 128, 0, stream>>>(
            static_cast<const float*>(w.data), w.cols, rows_per_head, head_row_stride, x, x_head_stride, x_token_stride, y);
        break;
    case ElemType::f16:
        matvec_transposed_heads_kernel<ElemType::f16><<<grid, 128, 0, stream>>>(
            static_cast<const __half*>(w.data), w.cols, rows_per_head, head_row_stride, x, x_head_stride, x_token_stride, y);
        break;
    case ElemType::bf16:
        matvec_transposed_heads_kernel<ElemType::bf16><<<grid, 128, 0, stream>>>(
            static_cast<const __nv_bfloat16*>(w.data), w.cols, rows_per_head, head_row_stride, x, x_head_stride, x_token_stride, y);
        break;
    case ElemType::fp8_e4m3:
        throw CudaError("matvec_transposed_heads_kernel: fp8 weights are not supported");
    }
    check_launch("matvec_transposed_heads_kernel");
}

}  // namespace moelens::cuda
