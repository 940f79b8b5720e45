#pragma once
// What running a model on a GPU will take, worked out before anything is
// uploaded: the weights as stored, the latent cache for the chosen context and
// batch, and the workspace of one forward step. Checked against the device's
// free memory so a model that will not fit is refused with the sizes named,
// instead of failing half-way through an upload.
#include <cstdint>
#include <string>

#include "moelens/model.h"

namespace moelens {

enum class DeviceCacheType { f32, bf16, fp8_e4m3 };
enum class DeviceMode { precise, fast };  // precise: f32 activations; fast: bf16 GEMM inputs

const char* device_cache_type_name(DeviceCacheType t);

struct DeviceMemoryRequest {
    std::uint64_t weight_bytes = 0;  // the checkpoint's tensors as they will be held (see model_weight_bytes)
    int context_tokens = 0;          // per sequence
    int sequences = 1;               // decoded together
    int step_tokens = 1;             // most tokens one forward step takes (the prefill chunk)
    DeviceCacheType cache = DeviceCacheType::bf16;
    DeviceMode mode = DeviceMode::fast;
};

struct DeviceMemoryPlan {
    std::uint64_t weights = 0;
    std::uint64_t latent_cache = 0;  // all layers, whole pages
    std::uint64_t workspace = 0;     // activations of one step, attention splits, cuBLAS
    std::uint64_t reserve = 0;       // the CUDA context and allocator slack, never ours to use
    std::uint64_t total() const { return weights + latent_cache + workspace + reserve; }
};

// Rows per cache page on the device (cuda/kernels/latent_pages.h uses the same).
constexpr int kDeviceCachePageRows = 64;

// Bytes of one latent row of kv_lora + dr values: fp8 rows add one f32 scale per
// 64 values (the layout of cuda/kernels/latent_pages.h).
std::uint64_t device_latent_row_bytes(DeviceCacheType t, int row_width);

// Every expected tensor of the config at `bytes_per_param` (2 for BF16 checkpoints).
std::uint64_t model_weight_bytes(const ModelConfig& c, int bytes_per_param);

DeviceMemoryPlan plan_device_memory(const ModelConfig& c, const DeviceMemoryRequest& r);

// Throws BackendError when plan.total() exceeds free_bytes, naming every part,
// what is free on `device` and what to change.
void check_device_memory(const DeviceMemoryPlan& plan, const DeviceMemoryRequest& r, std::uint64_t free_bytes,
                         const std::string& device);

// "1.50 GiB" style, for messages and reports.
std::string format_bytes(std::uint64_t bytes);

}  // namespace moelens
