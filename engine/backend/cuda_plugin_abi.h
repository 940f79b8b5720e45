#pragma once
// The one door into libmoelens_cuda.so: a C function returning a versioned table.
// The engine dlopen()s the plugin, looks up MOELENS_CUDA_ENTRY_SYMBOL, and refuses
// (falling back to the CPU, with the reason logged) any table whose abi_version
// differs from the one it was built with. Plain C types only: the plugin links its
// own static CUDA runtime and must not share C++ ABI details with the host.
//
// Version 2 added the device model: the engine describes a loaded checkpoint
// (host pointers into its mapped files), the plugin uploads it once and runs
// whole forward steps on the GPU. Version 3 makes a step a ragged batch: rows of
// several sequences at once, their caches pages of one device pool.
#include <stddef.h>
#include <stdint.h>

#define MOELENS_CUDA_PLUGIN_ABI_VERSION 3u
#define MOELENS_CUDA_ENTRY_SYMBOL "moelens_cuda_plugin_v3"

extern "C" {

struct MoelensCudaDeviceInfo {
    char name[256];
    uint64_t total_memory;
    uint64_t free_memory;
    int compute_major;
    int compute_minor;
};

enum { MOELENS_CUDA_F32 = 0, MOELENS_CUDA_F16 = 1, MOELENS_CUDA_BF16 = 2 };
enum { MOELENS_CUDA_CACHE_F32 = 0, MOELENS_CUDA_CACHE_BF16 = 1, MOELENS_CUDA_CACHE_FP8 = 2 };

// A row-major matrix [rows, cols] in host memory (Hugging Face layout, y = x W^T);
// data == NULL when absent.
struct MoelensCudaTensor {
    const void* data;
    uint32_t dtype;  // MOELENS_CUDA_F32 / F16 / BF16
    int32_t rows;
    int32_t cols;
};

struct MoelensCudaFfn {
    MoelensCudaTensor gate, up, down;  // [width, hidden], [width, hidden], [hidden, width]
};

// Norm vectors are f32 host arrays of their length.
struct MoelensCudaLayer {
    const float* input_norm;           // [hidden]
    const float* post_attention_norm;  // [hidden]
    MoelensCudaTensor q_proj;          // when q_lora == 0
    MoelensCudaTensor q_a_proj;        // otherwise
    const float* q_a_norm;             // [q_lora]
    MoelensCudaTensor q_b_proj;
    MoelensCudaTensor kv_a_proj;       // [kv_lora + dr, hidden]
    const float* kv_a_norm;            // [kv_lora]
    MoelensCudaTensor kv_b_proj;       // [H*(dn+dv), kv_lora]
    MoelensCudaTensor o_proj;          // [hidden, H*dv]
    int32_t moe;                       // 1: gate + experts + shared; 0: mlp
    MoelensCudaFfn mlp;
    MoelensCudaTensor gate;            // [n_routed, hidden]
    const MoelensCudaFfn* experts;     // [n_routed]
    MoelensCudaFfn shared;             // gate.data == NULL when n_shared == 0
};

// How a token's routed experts are chosen (DeepSeek-V2 section 2.2): softmax of
// the gate, then the top_k; with group_limited, only the experts of the
// topk_group best of n_group contiguous groups (the paper's devices: device-
// limited routing) are eligible; the weights are normalised over the chosen
// (norm_topk_prob) or scaled by routed_scaling_factor. The one definition of
// the router's parameters: the CPU's (RouteParams) and the GPU gate's are this.
struct MoelensRouteParams {
    int32_t n_experts;
    int32_t top_k;
    int32_t group_limited;
    int32_t n_group;
    int32_t topk_group;
    int32_t norm_topk_prob;
    float routed_scaling_factor;
};

struct MoelensCudaModelDesc {
    int32_t vocab, hidden, layers, heads, q_lora, kv_lora, dn, dr, dv;
    int32_t n_shared;
    MoelensRouteParams route;
    float rms_norm_eps;
    float softmax_scale;   // (dn + dr)^-0.5 with YaRN's correction
    float rope_scale;      // YaRN's cos/sin factor
    const float* inv_freq; // [dr / 2], YaRN-adjusted
    MoelensCudaTensor embed, lm_head;
    const float* final_norm;  // [hidden]
    const MoelensCudaLayer* layer;  // [layers]
};

struct MoelensCudaModelOptions {
    int32_t device;          // CUDA device index
    int32_t precise;         // 1: f32 everywhere (goldens' 1e-3); 0: fast (bf16 cuBLAS GEMMs for prompts)
    int32_t cache_type;      // MOELENS_CUDA_CACHE_*
    int32_t max_step_tokens; // most tokens one forward call takes (prompt chunk)
    // Called while uploading; return 0 to cancel (model_create then fails with "cancelled").
    int (*progress)(void* user, uint64_t done_bytes, uint64_t total_bytes);
    void* user;
};

// One sequence's part of a step: n_tokens tokens at positions start_pos...
// (a decoding sequence's one token, or a chunk of its prompt). When logits is not
// NULL it receives the last token's logits [vocab]; when route_ids is not NULL it
// receives [moe layers][n_tokens][top_k] expert ids and route_weights the
// matching weights.
struct MoelensCudaBatchItem {
    void* sequence;
    const int32_t* tokens;
    int32_t n_tokens;
    int32_t start_pos;
    float* logits;
    int32_t* route_ids;
    float* route_weights;
};

// The device cache as it is: a sequence's pages and the model's pool.
struct MoelensCudaCacheStats {
    int32_t page_rows;        // positions per page
    int32_t pages_held;       // this sequence's
    int32_t pool_pages_used;  // held by any sequence of the model
    int32_t pool_pages_free;  // allocated, free for reuse
    uint64_t pool_bytes;      // the pool's device memory, scales included
};

struct MoelensCudaPlugin {
    uint32_t abi_version;      // MOELENS_CUDA_PLUGIN_ABI_VERSION
    const char* build_info;    // e.g. "CUDA runtime 13000, sm_80 sm_89 sm_90"

    // Number of usable devices, or -1 with a message in err (no driver, no device,
    // driver too old). Never aborts.
    int (*device_count)(char* err, size_t err_len);

    // Fills *info for device `index`; returns 0 on success, -1 with a message.
    int (*device_info)(int index, MoelensCudaDeviceInfo* info, char* err, size_t err_len);

    // Uploads the model; NULL with a message on failure (nothing stays allocated).
    void* (*model_create)(const MoelensCudaModelDesc* desc, const MoelensCudaModelOptions* options, char* err,
                          size_t err_len);
    void (*model_destroy)(void* model);

    // A sequence's latent cache on the device: pages of the model's pool, taken
    // as positions arrive up to max_tokens and given back when it is destroyed.
    // NULL with a message on failure.
    void* (*sequence_create)(void* model, int32_t max_tokens, char* err, size_t err_len);
    void (*sequence_destroy)(void* sequence);

    // Runs one step over the items' rows together (in launches of at most
    // max_step_tokens rows; an item may span two). 0 on success, -1 with a
    // message naming the failing kernel. Calls on one model are serialised
    // inside the plugin.
    int (*forward_batch)(void* model, const MoelensCudaBatchItem* items, int32_t n_items, char* err, size_t err_len);

    // Fills *out for `sequence` of `model`; never fails.
    void (*cache_stats)(void* model, void* sequence, MoelensCudaCacheStats* out);
};

typedef const MoelensCudaPlugin* (*MoelensCudaEntryFn)(void);

}  // extern "C"
