#pragma once
// Absorbed MLA decode attention (DeepSeek-V2 eq. 9-11 with W_UK folded into the
// query and W_UV applied after): one query token per sequence against its paged
// latent cache. out_lat[b][h] = sum_s p_s c_s with p = softmax_s(scale *
// (q_lat[b][h] . c_s + q_pe[b][h] . k_pe_s)).
#include <cuda_runtime_api.h>

#include <cstddef>

#include "cuda/kernels/latent_pages.h"

namespace moelens::cuda {

struct MlaDecodeShape {
    int n_seqs = 0;
    int n_heads = 0;       // H
    int kv_lora = 0;       // d_c <= 512
    int dr = 0;            // d_r; kv_lora + dr == pages.row_width
    float scale = 0.0f;    // softmax scale
    int max_ctx = 0;       // an upper bound of ctx_len (host side: picks the split)
    int max_pages = 0;     // columns of the page table
    // Layout of the inputs, so the forward step passes its buffers as they are:
    int q_pe_head_stride = 0;    // floats between heads' q_pe (0 = dr: contiguous [n_seqs, H, dr])
    int q_pe_seq_stride = 0;     // floats between sequences' q_pe (0 = H * q_pe_head_stride)
    int page_table_stride = -1;  // ints between sequences' page-table rows (-1 = max_pages; 0 = all share one:
                                 // the causal queries of one prompt, each with its own ctx_len)
};

// How many context splits a launch uses: enough blocks to fill every SM twice,
// never a split shorter than one 32-row tile.
int mla_decode_splits(const MlaDecodeShape& s, int n_sms);

// Floats of workspace the launch needs (partial outputs and softmax statistics).
std::size_t mla_decode_workspace_floats(const MlaDecodeShape& s, int n_sms);

// q_lat [n_seqs, H, kv_lora], q_pe (strides above), out_lat [n_seqs, H, kv_lora];
// page_table [n_seqs, max_pages] and ctx_len [n_seqs] on the device. Each block
// reads its slice of the context once for up to 16 heads (all heads of V2-Lite),
// then attention_mla_merge_kernel combines the splits. A sequence with ctx_len 0
// gets zeros. Twin: ref::attention_mla_absorbed, one sequence at a time.
void attention_mla_decode(const float* q_lat, const float* q_pe, const LatentPages& pages, const int* page_table,
                          const int* ctx_len, const MlaDecodeShape& shape, float* out_lat, float* workspace,
                          std::size_t workspace_floats, int n_sms, cudaStream_t stream);

}  // namespace moelens::cuda
