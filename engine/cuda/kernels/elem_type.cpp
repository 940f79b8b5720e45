#include "cuda/kernels/elem_type.h"

namespace moelens::cuda {

const char* elem_type_name(ElemType t)
{
    switch (t) {
    case ElemType::f32: return "f32";
    case ElemType::f16: return "f16";
    case ElemType::bf16: return "bf16";
    case ElemType::fp8_e4m3: return "fp8_e4m3";
    }
    return "?";
}

}  // namespace moelens::cuda
