#pragma once
// Warp and block reductions shared by the kernels.
#include <cuda_runtime.h>

namespace moelens::cuda {

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over a block of kThreads threads (a multiple of 32); every thread gets the
// result. Uses a 32-float shared array, so it may be called repeatedly.
template <int kThreads>
__device__ __forceinline__ float block_sum(float v)
{
    static_assert(kThreads % 32 == 0 && kThreads <= 1024);
    __shared__ float partial[32];
    v = warp_sum(v);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();  // a previous call may still be reading `partial`
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    v = lane < kThreads / 32 ? partial[lane] : 0.0f;
    return warp_sum(v);
}

}  // namespace moelens::cuda
