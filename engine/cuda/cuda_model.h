#pragma once
// A DeepSeek-V2 model resident on one GPU: every weight uploaded once, one
// stream, the scratch of a forward step allocated once for the largest step,
// and sequences whose latent caches live in device memory. The forward step
// (cuda_forward.cpp) runs the whole model on the device; the host only sends
// token ids and takes back logits and routing.
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

// One sequence's latent cache: per layer `capacity` rows of kv_lora + dr values
// in the model's cache type, addressed through an identity page table (pages of
// kDevicePageRows rows). Grows by doubling up to max_tokens.
class CudaSequence {
public:
    CudaSequence(CudaModel& model, int max_tokens);
    void reserve(int tokens);
    LatentPages layer_pages(int layer);
    const int* page_table() const { return m_page_table.get(); }
    int capacity() const { return m_capacity; }
    CudaModel& model() { return m_model; }

private:
    CudaModel& m_model;
    int m_max_tokens = 0;
    int m_capacity = 0;
    DeviceBuffer<std::byte> m_rows;   // [layers][capacity][row_width] of the cache type
    DeviceBuffer<float> m_scales;     // fp8: [layers][capacity][scale blocks]
    DeviceBuffer<int> m_page_table;   // [capacity / page rows]: identity
};

constexpr int kDevicePageRows = 64;

class CudaModel {
public:
    CudaModel(const MoelensCudaModelDesc& desc, const MoelensCudaModelOptions& options);

    void forward(CudaSequence& seq, const MoelensCudaStep& step);

    const ModelDims& dims() const { return m_dims; }
    ElemType cache_type() const { return m_cache_type; }
    int device() const { return m_device; }
    std::mutex& mutex() { return m_mutex; }

private:
    void upload(const MoelensCudaModelDesc& desc, const MoelensCudaModelOptions& options);
    void allocate_scratch();
    void forward_chunk(CudaSequence& seq, const int32_t* tokens, int n, int start_pos, bool want_logits);
    void attention(CudaSequence& seq, int layer, int n, int start_pos);
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
    DeviceBuffer<float> m_logits;                                  // [vocab]
    DeviceBuffer<float> m_attn_work;                               // MLA splits; grows with the context
    std::vector<int> m_host_ints;                                  // staging for positions / lengths
};

}  // namespace moelens::cuda
