#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include "cuda/kernels/cuda_error.h"
#include "cuda/kernels/latent_pages.h"
#include "cuda/kernels/reduce.cuh"

namespace moelens::cuda {
namespace {

template <class T>
__global__ void latent_rows_store_kernel(const float* src, const int* dest_rows, int width, T* data)
{
    const int r = blockIdx.x;
    const float* s = src + static_cast<std::size_t>(r) * width;
    T* d = data + static_cast<std::size_t>(dest_rows[r]) * width;
    for (int c = threadIdx.x; c < width; c += blockDim.x) {
        if constexpr (sizeof(T) == 4)
            d[c] = s[c];
        else
            d[c] = __float2bfloat16_rn(s[c]);
    }
}

// One warp per (row, 64-value block): E4M3's largest finite value is 448, so the
// block's max |x| maps to it; an all-zero block keeps scale 1.
__global__ void latent_rows_store_fp8_kernel(const float* src, const int* dest_rows, int width, __nv_fp8_e4m3* data,
                                             float* scales)
{
    const int r = blockIdx.x, blk = blockIdx.y, lane = threadIdx.x;
    const int nblk = gridDim.y;
    const int c0 = blk * kFp8ScaleBlock;
    const float* s = src + static_cast<std::size_t>(r) * width;
    float amax = 0.0f;
    for (int c = c0 + lane; c < min(c0 + kFp8ScaleBlock, width); c += 32) amax = fmaxf(amax, fabsf(s[c]));
    amax = warp_max(amax);
    const float scale = amax > 0.0f ? amax / 448.0f : 1.0f;
    const std::size_t row = static_cast<std::size_t>(dest_rows[r]);
    for (int c = c0 + lane; c < min(c0 + kFp8ScaleBlock, width); c += 32)
        data[row * width + c] = __nv_fp8_e4m3(s[c] / scale);
    if (lane == 0) scales[row * nblk + blk] = scale;
}

}  // namespace

void latent_rows_store(const float* src, int n_rows, const int* dest_rows, const LatentPages& pages,
                       cudaStream_t stream)
{
    if (n_rows <= 0) return;
    switch (pages.type) {
    case ElemType::f32:
        latent_rows_store_kernel<<<n_rows, 128, 0, stream>>>(src, dest_rows, pages.row_width,
                                                             static_cast<float*>(pages.data));
        break;
    case ElemType::bf16:
        latent_rows_store_kernel<<<n_rows, 128, 0, stream>>>(src, dest_rows, pages.row_width,
                                                             static_cast<__nv_bfloat16*>(pages.data));
        break;
    case ElemType::fp8_e4m3:
        latent_rows_store_fp8_kernel<<<dim3(n_rows, fp8_scale_blocks(pages.row_width)), 32, 0, stream>>>(
            src, dest_rows, pages.row_width, static_cast<__nv_fp8_e4m3*>(pages.data), pages.scales);
        break;
    case ElemType::f16: throw CudaError("latent_rows_store_kernel: the latent cache is f32, bf16 or fp8_e4m3, not f16");
    }
    check_launch("latent_rows_store_kernel");
}

}  // namespace moelens::cuda
