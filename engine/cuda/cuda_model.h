#pragma once
// A DeepSeek-V2 model resident on one GPU: every weight uploaded once, one
// stream, the scratch of a step allocated once for the largest step, and one
// pool of latent-cache pages shared by its sequences. A step (cuda_forward.cpp)
// runs the whole model on the device over the rows of several sequences; the
// host only sends token ids and takes back logits and routing.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "backend/cuda_plugin_abi.h"
#include "cuda/kernels/cublas_gemm.h"
#include "cuda/kernels/device_buffer.h"
#include "cuda/kernels/latent_pages.h"
#include "cuda/kernels/matmul.h"
#include "cuda/kernels/moe_gate.h"

namespace moelens::cuda {

// A weight matrix in device memory, in its stored type.
struct DeviceMatrix {
    DeviceBuffer<std::byte> buffer;
    WeightRef ref;
    bool empty() const { return ref.data == nullptr; }
};

struct DeviceFfn {
    DeviceMatrix gate, up, down;
};

struct DeviceLayer {
    DeviceBuffer<float> input_norm, post_attention_norm, q_a_norm, kv_a_norm;
    DeviceMatrix q_proj, q_a_proj, q_b_proj, kv_a_proj, kv_b_proj, o_proj;
    bool moe = false;
    DeviceFfn mlp;
    DeviceMatrix gate;
    // All routed experts back to back ([n_routed * width, hidden] for gate/up,
    // [n_routed * hidden, width] for down), so matmul_grouped runs them at once;
    // each ref describes one expert's matrix.
    DeviceFfn experts;
    DeviceFfn shared;
};

// The dimensions of the model (plain copy of the descriptor's numbers).
struct ModelDims {
    int vocab, hidden, layers, heads, q_lora, kv_lora, dn, dr, dv;
    int n_routed, n_shared, top_k, moe_width, ffn_width_max;
    float eps, softmax_scale, rope_scale;
    GateParams gate;
};

// A non-blocking stream on `device` (made current for the calling thread first).
class CudaStream {
public:
    explicit CudaStream(int device);
    ~CudaStream();
    CudaStream(const CudaStream&) = delete;
    CudaStream& operator=(const CudaStream&) = delete;
    cudaStream_t get() const { return m_stream; }

private:
    cudaStream_t m_stream = nullptr;
};

class CudaModel;

constexpr int kDevicePageRows = 64;

// One sequence's latent cache: pages of the model's pool (kDevicePageRows
// positions of every layer each), listed in position order. Taken as positions
// arrive, up to max_tokens; given back when the sequence is destroyed.
class CudaSequence {
public:
    CudaSequence(CudaModel& model, int max_tokens);
    ~CudaSequence();
    CudaSequence(const CudaSequence&) = delete;
    CudaSequence& operator=(const CudaSequence&) = delete;
    void reserve(int tokens);
    const std::vector<int>& pages() const { return m_pages; }
    CudaModel& model() { return m_model; }
    // The pool row holding position `pos` (in every layer's part of the pool).
    int row_of(int pos) const { return m_pages[static_cast<std::size_t>(pos / kDevicePageRows)] * kDevicePageRows + pos % kDevicePageRows; }

private:
    CudaModel& m_model;
    int m_max_tokens = 0;
    std::vector<int> m_pages;
};

class CudaModel {
public:
    CudaModel(const MoelensCudaModelDesc& desc, const MoelensCudaModelOptions& options);

    // One step over the items' rows (ABI 3 forward_batch).
    void forward_batch(const MoelensCudaBatchItem* items, int n_items);
    // The latent cache pool: a free page, grown (by doubling) when none is left.
    int take_page();
    void give_page(int page) { m_free_pages.push_back(page); }
    void cache_stats(const CudaSequence& seq, MoelensCudaCacheStats& out) const;

    const ModelDims& dims() const { return m_dims; }
    ElemType cache_type() const { return m_cache_type; }
    int device() const { return m_device; }
    std::mutex& mutex() { return m_mutex; }

private:
    void upload(const MoelensCudaModelDesc& desc, const MoelensCudaModelOptions& options);
    void allocate_scratch();
    struct LaunchRow {
        int item, t;  // token t of item
    };
    void launch(const MoelensCudaBatchItem* items, const std::vector<LaunchRow>& rows);
    struct StepOps;  // the layer walk's operations (cuda_forward.cpp)
    void attention(int layer, int n, int max_ctx);
    LatentPages layer_pages(int layer);
    void grow_pool(int pages);
    void moe(int layer, int moe_index, int n);
    void ffn(const DeviceFfn& f, const float* x, int n, float* out);
    // y [n, rows] = x [n, cols] W^T: cuBLAS bf16 in fast mode for prompt-sized n,
    // our f32-accumulating kernel otherwise.
    void project(const DeviceMatrix& w, const float* x, int n, float* y);

    ModelDims m_dims{};
    int m_device = 0;
    bool m_precise = false;
    ElemType m_cache_type = ElemType::bf16;
    int m_max_step = 1;
    int m_sms = 1;
    std::mutex m_mutex;
    CudaStream m_stream;
    std::unique_ptr<Cublas> m_blas;  // fast mode, when libcublas loads

    DeviceMatrix m_embed, m_lm_head;
    DeviceBuffer<float> m_final_norm, m_inv_freq;
    std::vector<DeviceLayer> m_layers;
    int m_moe_layers = 0;

    // Scratch for m_max_step tokens (shapes per token in comments).
    DeviceBuffer<int> m_tokens, m_positions, m_ctx_len;            // [T]
    DeviceBuffer<float> m_cos, m_sin;                              // [T, dr/2]
    DeviceBuffer<float> m_x, m_xn, m_attn_out, m_ffn_out;          // [T, hidden]
    DeviceBuffer<float> m_q;                                       // [T, H*(dn+dr)]
    DeviceBuffer<float> m_q_a;                                     // [T, q_lora]
    DeviceBuffer<float> m_kv_a;                                    // [T, kv_lora + dr]
    DeviceBuffer<float> m_q_lat, m_out_lat;                        // [T, H, kv_lora]
    DeviceBuffer<float> m_attn_o;                                  // [T, H*dv]
    DeviceBuffer<float> m_ffn_gate, m_ffn_up;                      // [T, widest FFN]
    DeviceBuffer<float> m_gate_logits, m_gate_probs;               // [T, n_routed]
    DeviceBuffer<int> m_route_ids;                                 // [moe layers, T, k]
    DeviceBuffer<float> m_route_weights;                           // [moe layers, T, k]
    DeviceBuffer<int> m_expert_offsets;                            // [n_routed + 1]
    DeviceBuffer<int> m_slot_of, m_token_of_slot;                  // [T*k]
    DeviceBuffer<float> m_x_perm, m_y_perm;                        // [T*k, hidden]
    DeviceBuffer<float> m_g_perm, m_u_perm;                        // [T*k, expert width]
    DeviceBuffer<std::uint16_t> m_bf16_in;                         // [T, widest input] (fast mode)
    DeviceBuffer<float> m_logits;                                  // [rows asking for logits, vocab] (grown)
    DeviceBuffer<float> m_head_in;                                 // [T, hidden] the rows lm_head reads
    DeviceBuffer<int> m_dest_rows;                                 // [T] pool row each row's latent goes to
    DeviceBuffer<int> m_page_table;                                // [T, m_table_cols] each row's sequence's pages (grown)
    int m_table_cols = 0;
    DeviceBuffer<float> m_attn_work;                               // MLA splits; grows with the context
    std::vector<int> m_host_ints;                                  // staging for ids, positions, lengths, rows
    std::vector<int> m_host_table;                                 // staging for the page table

    // The latent cache pool: [layers][m_pool_pages * kDevicePageRows][row] of
    // m_cache_type (fp8: and its scales); pages are handed to sequences.
    DeviceBuffer<std::byte> m_pool_rows;
    DeviceBuffer<float> m_pool_scales;
    int m_pool_pages = 0;
    std::vector<int> m_free_pages;
};

}  // namespace moelens::cuda
