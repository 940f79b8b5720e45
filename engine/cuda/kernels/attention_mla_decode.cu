#include <algorithm>
#include <cfloat>
#include <string>

#include "cuda/kernels/attention_mla_decode.h"
#include "cuda/kernels/cuda_error.h"
#include "cuda/kernels/elem_load.cuh"
#include "cuda/kernels/reduce.cuh"

namespace moelens::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kHeadsPerBlock = 16;  // every head of V2-Lite; V2's 128 heads take 8 blocks per split
constexpr int kTile = 32;           // context rows per step: one per lane in the softmax update
constexpr int kMaxLora = 512;
constexpr int kColsPerThread = kMaxLora / kThreads;

int ceil_div(long long a, long long b) { return static_cast<int>((a + b - 1) / b); }

int head_tiles(int n_heads) { return ceil_div(n_heads, kHeadsPerBlock); }

// Chunk of context per split, a whole number of tiles.
int split_chunk(const MlaDecodeShape& s, int splits) { return ceil_div(ceil_div(s.max_ctx, splits), kTile) * kTile; }

std::size_t smem_bytes(int width)
{
    return sizeof(float) * (static_cast<std::size_t>(kHeadsPerBlock + kTile) * width + kHeadsPerBlock * kTile +
                            3 * kHeadsPerBlock);
}

// Loads rows [t0, t0 + kTile) of sequence b, widened to f32, into rows_s; rows
// past `end` become zeros. kVec moves 16 bytes per thread per load (when a row is
// a whole number of 16-byte chunks), which is what lets the kernel approach the
// copy bandwidth with only one or two blocks per SM.
template <ElemType T, bool kVec>
__device__ void load_tile(const typename Elem<T>::type* data, const float* scales, const int* table, int page_rows,
                          int width, int t0, int end, float* rows_s)
{
    using E = typename Elem<T>::type;
    constexpr int V = kVec ? static_cast<int>(16 / sizeof(E)) : 1;
    const int nblk = (width + 63) / 64;
    const int chunks = width / V;
    for (int idx = threadIdx.x; idx < kTile * chunks; idx += kThreads) {
        const int t = idx / chunks, c = (idx % chunks) * V;
        const int pos = t0 + t;
        float* dst = rows_s + t * width + c;
        if (pos >= end) {
#pragma unroll
            for (int v = 0; v < V; ++v) dst[v] = 0.0f;
            continue;
        }
        const std::size_t row = static_cast<std::size_t>(table[pos / page_rows]) * page_rows + pos % page_rows;
        const E* src = data + row * width + c;
        const float sc = T == ElemType::fp8_e4m3 ? scales[row * nblk + c / 64] : 1.0f;
        if constexpr (kVec) {
            const uint4 raw = *reinterpret_cast<const uint4*>(src);
            const E* e = reinterpret_cast<const E*>(&raw);
#pragma unroll
            for (int v = 0; v < V; ++v) dst[v] = Elem<T>::load(e, v) * sc;
        } else {
            dst[0] = Elem<T>::load(src, 0) * sc;
        }
    }
}

// grid (splits, head tiles, sequences). Flash-decoding: each block keeps an online
// softmax (running max m, sum l, unnormalised accumulator) over its slice and
// writes them to the workspace for the merge.
template <ElemType T, bool kVec>
__global__ void __launch_bounds__(kThreads) attention_mla_decode_kernel(
    const float* __restrict__ q_lat, const float* __restrict__ q_pe, const typename Elem<T>::type* __restrict__ data,
    const float* __restrict__ scales, int page_rows, const int* __restrict__ page_table, const int* __restrict__ ctx_len,
    MlaDecodeShape s, int chunk, float* __restrict__ part_acc, float* __restrict__ part_ml)
{
    extern __shared__ float smem[];
    const int width = s.kv_lora + s.dr;
    float* q_s = smem;                                  // [kHeadsPerBlock][width]
    float* rows_s = q_s + kHeadsPerBlock * width;       // [kTile][width]
    float* p_s = rows_s + kTile * width;                // [kHeadsPerBlock][kTile] scores, then weights
    float* m_s = p_s + kHeadsPerBlock * kTile;          // [kHeadsPerBlock] running max
    float* l_s = m_s + kHeadsPerBlock;                  // [kHeadsPerBlock] running sum
    float* alpha_s = l_s + kHeadsPerBlock;              // [kHeadsPerBlock] rescale of this step

    const int split = blockIdx.x, b = blockIdx.z;
    const int h0 = blockIdx.y * kHeadsPerBlock;
    const int hb = min(kHeadsPerBlock, s.n_heads - h0);
    const int splits = gridDim.x;
    const int ctx = ctx_len[b];
    const int begin = split * chunk, end = min(ctx, begin + chunk);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int* table = page_table + static_cast<std::size_t>(b) * s.page_table_stride;

    for (int i = tid; i < kHeadsPerBlock * width; i += kThreads) {
        const int h = i / width, c = i % width;
        float v = 0.0f;
        if (h < hb) {
            const std::size_t bh = static_cast<std::size_t>(b) * s.n_heads + h0 + h;
            v = c < s.kv_lora ? q_lat[bh * s.kv_lora + c]
                              : q_pe[static_cast<std::size_t>(b) * s.q_pe_seq_stride +
                                     static_cast<std::size_t>(h0 + h) * s.q_pe_head_stride + c - s.kv_lora];
        }
        q_s[i] = v;
    }
    if (tid < kHeadsPerBlock) {
        m_s[tid] = -FLT_MAX;
        l_s[tid] = 0.0f;
    }
    float acc[kHeadsPerBlock][kColsPerThread] = {};

    for (int t0 = begin; t0 < end; t0 += kTile) {
        __syncthreads();  // the previous step's readers of rows_s / p_s are done
        load_tile<T, kVec>(data, scales, table, page_rows, width, t0, end, rows_s);
        __syncthreads();
        // scores: warp w takes (head, row) pairs w, w + 8, ...; lanes split the width
        for (int pair = warp; pair < hb * kTile; pair += kWarps) {
            const int h = pair / kTile, t = pair % kTile;
            float dot = 0.0f;
            for (int c = lane; c < width; c += 32) dot += q_s[h * width + c] * rows_s[t * width + c];
            dot = warp_sum(dot);
            if (lane == 0) p_s[h * kTile + t] = t0 + t < end ? s.scale * dot : -FLT_MAX;
        }
        __syncthreads();
        // online softmax: lane t holds row t of head h
        for (int h = warp; h < hb; h += kWarps) {
            const float sc = p_s[h * kTile + lane];
            const float m_old = m_s[h];
            const float m_new = fmaxf(m_old, warp_max(sc));
            const float p = t0 + lane < end ? expf(sc - m_new) : 0.0f;
            p_s[h * kTile + lane] = p;
            const float psum = warp_sum(p);
            if (lane == 0) {
                const float alpha = expf(m_old - m_new);  // 0 on the first step (m_old = -FLT_MAX)
                alpha_s[h] = alpha;
                l_s[h] = l_s[h] * alpha + psum;
                m_s[h] = m_new;
            }
        }
        __syncthreads();
        // acc[h][c] = alpha_h acc[h][c] + sum_t p[h][t] c_t[c]; thread owns columns tid, tid + 256
#pragma unroll
        for (int k = 0; k < kColsPerThread; ++k) {
            const int c = tid + k * kThreads;
            if (c >= s.kv_lora) break;
#pragma unroll
            for (int h = 0; h < kHeadsPerBlock; ++h) acc[h][k] *= h < hb ? alpha_s[h] : 0.0f;
            for (int t = 0; t < kTile; ++t) {
                const float r = rows_s[t * width + c];
#pragma unroll
                for (int h = 0; h < kHeadsPerBlock; ++h) acc[h][k] += p_s[h * kTile + t] * r;
            }
        }
    }
    __syncthreads();
    for (int h = 0; h < hb; ++h) {
        const std::size_t slot = (static_cast<std::size_t>(b) * s.n_heads + h0 + h) * splits + split;
#pragma unroll
        for (int k = 0; k < kColsPerThread; ++k) {
            const int c = tid + k * kThreads;
            if (c < s.kv_lora) part_acc[slot * s.kv_lora + c] = acc[h][k];
        }
        if (tid == 0) {
            part_ml[2 * slot] = begin < end ? m_s[h] : -FLT_MAX;
            part_ml[2 * slot + 1] = begin < end ? l_s[h] : 0.0f;
        }
    }
}

// grid (heads, sequences): out = sum_i e^(m_i - M) acc_i / sum_i e^(m_i - M) l_i.
__global__ void attention_mla_merge_kernel(const float* part_acc, const float* part_ml, int splits, int kv_lora,
                                           float* out_lat)
{
    const std::size_t bh = static_cast<std::size_t>(blockIdx.y) * gridDim.x + blockIdx.x;
    const float* ml = part_ml + bh * splits * 2;
    float M = -FLT_MAX;
    for (int i = 0; i < splits; ++i)
        if (ml[2 * i + 1] > 0.0f) M = fmaxf(M, ml[2 * i]);
    float L = 0.0f;
    for (int i = 0; i < splits; ++i)
        if (ml[2 * i + 1] > 0.0f) L += expf(ml[2 * i] - M) * ml[2 * i + 1];
    const float inv = L > 0.0f ? 1.0f / L : 0.0f;
    for (int c = threadIdx.x; c < kv_lora; c += blockDim.x) {
        float o = 0.0f;
        for (int i = 0; i < splits; ++i)
            if (ml[2 * i + 1] > 0.0f) o += expf(ml[2 * i] - M) * part_acc[(bh * splits + i) * kv_lora + c];
        out_lat[bh * kv_lora + c] = o * inv;
    }
}

template <ElemType T, bool kVec>
void launch(const float* q_lat, const float* q_pe, const LatentPages& pages, const int* page_table, const int* ctx_len,
            const MlaDecodeShape& s, int splits, float* part_acc, float* part_ml, cudaStream_t stream)
{
    auto kernel = attention_mla_decode_kernel<T, kVec>;
    const std::size_t smem = smem_bytes(pages.row_width);
    int device = 0, optin = 0;
    check_cuda(cudaGetDevice(&device), "attention_mla_decode_kernel: cudaGetDevice");
    check_cuda(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
               "attention_mla_decode_kernel: cudaDeviceGetAttribute");
    // f32 rows of 576 need 110 KiB: fine on sm_80 and sm_90, over sm_89's 99 KiB.
    if (smem > static_cast<std::size_t>(optin))
        throw CudaError("attention_mla_decode_kernel: needs " + std::to_string(smem) + " bytes of shared memory, the device allows " +
                        std::to_string(optin) + ": the kernel stages its tile in f32 whatever the cache type");
    // Above 48 KiB a kernel must opt in to its dynamic shared memory.
    check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)),
               "attention_mla_decode_kernel: cudaFuncSetAttribute(MaxDynamicSharedMemorySize)");
    const dim3 grid(splits, head_tiles(s.n_heads), s.n_seqs);
    kernel<<<grid, kThreads, smem, stream>>>(q_lat, q_pe, static_cast<const typename Elem<T>::type*>(pages.data),
                                             pages.scales, pages.page_rows, page_table, ctx_len, s,
                                             split_chunk(s, splits), part_acc, part_ml);
    check_launch("attention_mla_decode_kernel");
}

}  // namespace

int mla_decode_splits(const MlaDecodeShape& s, int n_sms)
{
    const int blocks = std::max(1, s.n_seqs * head_tiles(s.n_heads));
    const int want = ceil_div(2LL * std::max(1, n_sms), blocks);
    return std::max(1, std::min(want, ceil_div(std::max(1, s.max_ctx), kTile)));
}

std::size_t mla_decode_workspace_floats(const MlaDecodeShape& s, int n_sms)
{
    const std::size_t slots = static_cast<std::size_t>(s.n_seqs) * s.n_heads * mla_decode_splits(s, n_sms);
    return slots * (s.kv_lora + 2);
}

void attention_mla_decode(const float* q_lat, const float* q_pe, const LatentPages& pages, const int* page_table,
                          const int* ctx_len, const MlaDecodeShape& shape, float* out_lat, float* workspace,
                          std::size_t workspace_floats, int n_sms, cudaStream_t stream)
{
    MlaDecodeShape s = shape;
    if (s.q_pe_head_stride == 0) s.q_pe_head_stride = s.dr;
    if (s.q_pe_seq_stride == 0) s.q_pe_seq_stride = s.n_heads * s.q_pe_head_stride;
    if (s.page_table_stride < 0) s.page_table_stride = s.max_pages;
    if (s.kv_lora <= 0 || s.kv_lora > kMaxLora || s.dr < 0 || s.kv_lora + s.dr != pages.row_width)
        throw CudaError("attention_mla_decode_kernel: kv_lora " + std::to_string(s.kv_lora) + " + dr " +
                        std::to_string(s.dr) + " must equal the cache row width " + std::to_string(pages.row_width) +
                        " with kv_lora in 1..512");
    if (pages.type == ElemType::f16)
        throw CudaError("attention_mla_decode_kernel: the latent cache is f32, bf16 or fp8_e4m3, not f16");
    if (s.n_seqs <= 0 || s.n_heads <= 0) return;
    if (workspace_floats < mla_decode_workspace_floats(s, n_sms))
        throw CudaError("attention_mla_decode_kernel: workspace of " + std::to_string(workspace_floats) +
                        " floats, need " + std::to_string(mla_decode_workspace_floats(s, n_sms)));
    const int splits = mla_decode_splits(s, n_sms);
    const std::size_t slots = static_cast<std::size_t>(s.n_seqs) * s.n_heads * splits;
    float* part_acc = workspace;
    float* part_ml = workspace + slots * s.kv_lora;
    const std::size_t row_bytes = elem_size(pages.type) * pages.row_width;
    const bool vec = row_bytes % 16 == 0;
    switch (pages.type) {
    case ElemType::f32:
        vec ? launch<ElemType::f32, true>(q_lat, q_pe, pages, page_table, ctx_len, s, splits, part_acc, part_ml, stream)
            : launch<ElemType::f32, false>(q_lat, q_pe, pages, page_table, ctx_len, s, splits, part_acc, part_ml, stream);
        break;
    case ElemType::bf16:
        vec ? launch<ElemType::bf16, true>(q_lat, q_pe, pages, page_table, ctx_len, s, splits, part_acc, part_ml, stream)
            : launch<ElemType::bf16, false>(q_lat, q_pe, pages, page_table, ctx_len, s, splits, part_acc, part_ml, stream);
        break;
    case ElemType::fp8_e4m3:
        vec ? launch<ElemType::fp8_e4m3, true>(q_lat, q_pe, pages, page_table, ctx_len, s, splits, part_acc, part_ml,
                                               stream)
            : launch<ElemType::fp8_e4m3, false>(q_lat, q_pe, pages, page_table, ctx_len, s, splits, part_acc, part_ml,
                                                stream);
        break;
    case ElemType::f16: break;
    }
    attention_mla_merge_kernel<<<dim3(s.n_heads, s.n_seqs), 256, 0, stream>>>(part_acc, part_ml, splits, s.kv_lora,
                                                                             out_lat);
    check_launch("attention_mla_merge_kernel");
}

}  // namespace moelens::cuda
