#pragma once
// Widening loads used by every kernel that reads stored weights or cache rows:
// one place that says how each element type becomes an f32.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include "cuda/kernels/elem_type.h"

namespace moelens::cuda {

template <ElemType T>
struct Elem;
template <>
struct Elem<ElemType::f32> {
    using type = float;
    static __device__ __forceinline__ float load(const float* p, std::size_t i) { return p[i]; }
};
template <>
struct Elem<ElemType::f16> {
    using type = __half;
    static __device__ __forceinline__ float load(const __half* p, std::size_t i) { return __half2float(p[i]); }
};
template <>
struct Elem<ElemType::bf16> {
    using type = __nv_bfloat16;
    static __device__ __forceinline__ float load(const __nv_bfloat16* p, std::size_t i) { return __bfloat162float(p[i]); }
};
template <>
struct Elem<ElemType::fp8_e4m3> {
    using type = __nv_fp8_e4m3;
    static __device__ __forceinline__ float load(const __nv_fp8_e4m3* p, std::size_t i) { return float(p[i]); }
};

}  // namespace moelens::cuda
