#pragma once
// The latent cache on the device: fixed-size pages of `page_rows` rows, each row
// the normalised c_kv [kv_lora] then the roped k_pe [dr] (the CPU's LatentCache
// row), stored as f32, bf16 or fp8 E4M3. A sequence's pages are listed in a page
// table, so sequences grow without moving rows and a batch shares one pool.
#include <cuda_runtime_api.h>

#include <cstddef>

#include "cuda/kernels/elem_type.h"

namespace moelens::cuda {

// FP8 rows carry one f32 scale per block of this many values (the last block of
// a row may be shorter): a row's scales are known when it is written, unlike a
// per-page scale, and 64 keeps c_kv's outliers from flattening a whole row.
constexpr int kFp8ScaleBlock = 64;

inline int fp8_scale_blocks(int row_width) { return (row_width + kFp8ScaleBlock - 1) / kFp8ScaleBlock; }

struct LatentPages {
    void* data = nullptr;      // [n_pages * page_rows, row_width] of `type`
    float* scales = nullptr;   // fp8 only: [n_pages * page_rows, fp8_scale_blocks(row_width)]
    ElemType type = ElemType::bf16;
    int page_rows = 64;
    int row_width = 0;         // kv_lora + dr
};

// Bytes one cached row takes on the device, scales included.
inline std::size_t latent_row_bytes(ElemType type, int row_width)
{
    std::size_t b = elem_size(type) * static_cast<std::size_t>(row_width);
    if (type == ElemType::fp8_e4m3) b += sizeof(float) * static_cast<std::size_t>(fp8_scale_blocks(row_width));
    return b;
}

// Writes n_rows f32 rows src [n_rows, row_width] to the physical rows dest_rows[i]
// of the pool, rounding to its type (fp8: scale = max|x| / 448 per block).
void latent_rows_store(const float* src, int n_rows, const int* dest_rows, const LatentPages& pages,
                       cudaStream_t stream);

}  // namespace moelens::cuda
