#pragma once
// Element types of device tensors, as the host-side launchers name them. Headers
// stay includable by the host compiler (tests and the plugin's C++ files), so
// 16-bit values are std::uint16_t here and __nv_bfloat16 / __half inside kernels.
#include <cstddef>
#include <cstdint>

namespace moelens::cuda {

enum class ElemType : int { f32 = 0, f16 = 1, bf16 = 2, fp8_e4m3 = 3 };

inline std::size_t elem_size(ElemType t)
{
    switch (t) {
    case ElemType::f32: return 4;
    case ElemType::f16:
    case ElemType::bf16: return 2;
    case ElemType::fp8_e4m3: return 1;
    }
    return 0;
}

const char* elem_type_name(ElemType t);

}  // namespace moelens::cuda
