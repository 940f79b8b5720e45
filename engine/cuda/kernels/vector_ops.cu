#include <cuda_bf16.h>

#include "cuda/kernels/cuda_error.h"
#include "cuda/kernels/elem_load.cuh"
#include "cuda/kernels/vector_ops.h"

namespace moelens::cuda {
namespace {

unsigned blocks_for(long long n) { return static_cast<unsigned>((n + 255) / 256); }

__global__ void axpy_kernel(float* y, float a, const float* x, long long n)
{
    const long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) y[i] += a * x[i];
}

__global__ void f32_to_bf16_kernel(const float* x, __nv_bfloat16* y, long long n)
{
    const long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) y[i] = __float2bfloat16_rn(x[i]);
}

template <ElemType T>
__global__ void embedding_rows_kernel(const typename Elem<T>::type* table, int cols, const int* ids, int n_tokens,
                                      float* y)
{
    const int t = blockIdx.y;
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n_tokens || c >= cols) return;
    y[static_cast<std::size_t>(t) * cols + c] = Elem<T>::load(table, static_cast<std::size_t>(ids[t]) * cols + c);
}

}  // namespace

void axpy(float* y, float a, const float* x, long long n, cudaStream_t stream)
{
    if (n <= 0) return;
    axpy_kernel<<<blocks_for(n), 256, 0, stream>>>(y, a, x, n);
    check_launch("axpy_kernel");
}

void f32_to_bf16(const float* x, std::uint16_t* y, long long n, cudaStream_t stream)
{
    if (n <= 0) return;
    f32_to_bf16_kernel<<<blocks_for(n), 256, 0, stream>>>(x, reinterpret_cast<__nv_bfloat16*>(y), n);
    check_launch("f32_to_bf16_kernel");
}

void embedding_rows(const void* table, ElemType type, int cols, const int* ids, int n_tokens, float* y,
                    cudaStream_t stream)
{
    if (n_tokens <= 0 || cols <= 0) return;
    const dim3 grid((cols + 255) / 256, n_tokens);
    switch (type) {
    case ElemType::f32:
        embedding_rows_kernel<ElemType::f32><<<grid, 256, 0, stream>>>(static_cast<const float*>(table), cols, ids, n_tokens, y);
        break;
    case ElemType::f16:
        embedding_rows_kernel<ElemType::f16><<<grid, 256, 0, stream>>>(static_cast<const __half*>(table), cols, ids, n_tokens, y);
        break;
    case ElemType::bf16:
        embedding_rows_kernel<ElemType::bf16>
            <<<grid, 256, 0, stream>>>(static_cast<const __nv_bfloat16*>(table), cols, ids, n_tokens, y);
        break;
    case ElemType::fp8_e4m3: throw CudaError("embedding_rows_kernel: fp8 tables are not supported");
    }
    check_launch("embedding_rows_kernel");
}

}  // namespace moelens::cuda
