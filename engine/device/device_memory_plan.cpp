#include "device/device_memory_plan.h"

#include <algorithm>
#include <cstdio>

#include "model/weights.h"
#include "moelens/error.h"

namespace moelens {
namespace {

constexpr std::uint64_t kMiB = 1024ull * 1024;

// The CUDA context, cuBLAS's handle and the allocator's rounding: measured at a
// few hundred MiB on recent drivers, so keep 512 MiB off the table.
constexpr std::uint64_t kReserve = 512 * kMiB;
// cuBLAS's default workspace on Hopper.
constexpr std::uint64_t kCublasWorkspace = 32 * kMiB;
// The MLA decode kernel splits the context to fill the SMs twice; 2 x 132 SMs
// (H100/H200) bounds the splits of any card we build for.
constexpr std::uint64_t kMaxAttentionSplits = 264;

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return (a + b - 1) / b; }

}  // namespace

const char* device_cache_type_name(DeviceCacheType t)
{
    switch (t) {
    case DeviceCacheType::f32: return "f32";
    case DeviceCacheType::bf16: return "bf16";
    case DeviceCacheType::fp8_e4m3: return "fp8";
    }
    return "?";
}

std::uint64_t device_latent_row_bytes(DeviceCacheType t, int row_width)
{
    const std::uint64_t w = static_cast<std::uint64_t>(row_width);
    switch (t) {
    case DeviceCacheType::f32: return 4 * w;
    case DeviceCacheType::bf16: return 2 * w;
    case DeviceCacheType::fp8_e4m3: return w + 4 * ceil_div(w, 64);
    }
    return 0;
}

std::uint64_t model_weight_bytes(const ModelConfig& c, int bytes_per_param)
{
    std::uint64_t params = 0;
    for (const auto& t : expected_tensors(c)) {  // lm_head included unless tied
        std::uint64_t n = 1;
        for (auto d : t.shape) n *= static_cast<std::uint64_t>(d);
        params += n;
    }
    return params * static_cast<std::uint64_t>(bytes_per_param);
}

DeviceMemoryPlan plan_device_memory(const ModelConfig& c, const DeviceMemoryRequest& r)
{
    DeviceMemoryPlan p;
    p.weights = r.weight_bytes;
    p.reserve = kReserve;

    const int row_width = c.kv_lora_rank + c.qk_rope_head_dim;
    const std::uint64_t pages = ceil_div(static_cast<std::uint64_t>(std::max(0, r.context_tokens)), kDeviceCachePageRows);
    p.latent_cache = static_cast<std::uint64_t>(c.num_hidden_layers) * std::max(1, r.sequences) * pages *
                     kDeviceCachePageRows * device_latent_row_bytes(r.cache, row_width);

    // One step's activations in f32, for T tokens (every sequence decodes one
    // token, or one prefill chunk): the widest buffers of runtime/step.h (StepWorkspace).
    const std::uint64_t T = static_cast<std::uint64_t>(std::max({1, r.step_tokens, r.sequences}));
    const std::uint64_t H = c.num_attention_heads, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim,
                        dv = c.v_head_dim, dc = c.kv_lora_rank;
    const std::uint64_t k = std::max(1, c.num_experts_per_tok);
    const std::uint64_t ffn_width =
        std::max({static_cast<std::uint64_t>(c.intermediate_size),
                  k * c.moe_intermediate_size,  // routed tokens permuted by expert: T*k rows
                  static_cast<std::uint64_t>(c.moe_intermediate_size) * std::max(1, c.n_shared_experts)});
    std::uint64_t floats_per_token = 4ull * c.hidden_size       // x, xn, attn_out, ffn_out
                                     + H * (dn + dr)            // q
                                     + c.q_lora_rank + dc + dr  // q_a, kv_a
                                     + 2 * H * dc + H * dr      // q_lat, out_lat, q_pe
                                     + H * dv                   // attn_o
                                     + 2 * ffn_width            // gate, up
                                     + k * c.hidden_size        // permuted inputs, then outputs
                                     + c.n_routed_experts + 2 * k
                                     + c.vocab_size;            // logits
    std::uint64_t bytes = 4 * floats_per_token * T;
    if (r.mode == DeviceMode::fast) bytes += 2 * T * std::max<std::uint64_t>(c.hidden_size, ffn_width);  // bf16 GEMM inputs
    const std::uint64_t splits =
        std::min<std::uint64_t>(kMaxAttentionSplits, std::max<std::uint64_t>(1, ceil_div(std::max(1, r.context_tokens), 32)));
    bytes += 4 * static_cast<std::uint64_t>(std::max(1, r.sequences)) * H * splits * (dc + 2);
    p.workspace = bytes + kCublasWorkspace;
    return p;
}

std::string format_bytes(std::uint64_t bytes)
{
    char buf[32];
    if (bytes >= 1024 * kMiB)
        std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1024.0 * kMiB));
    else
        std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / kMiB);
    return buf;
}

void check_device_memory(const DeviceMemoryPlan& plan, const DeviceMemoryRequest& r, std::uint64_t free_bytes,
                         const std::string& device)
{
    if (plan.total() <= free_bytes) return;
    std::string hint = "use a shorter context";
    if (r.cache != DeviceCacheType::fp8_e4m3) hint += " or the fp8 latent cache";
    if (plan.weights + plan.reserve > free_bytes) hint = "the weights alone do not fit: use a smaller model or a larger GPU";
    throw BackendError("model does not fit on " + device + ": it needs " + format_bytes(plan.total()) + " (weights " +
                       format_bytes(plan.weights) + ", latent cache " + format_bytes(plan.latent_cache) + " for " +
                       std::to_string(r.sequences) + " x " + std::to_string(r.context_tokens) + " tokens in " +
                       device_cache_type_name(r.cache) + ", workspace " + format_bytes(plan.workspace) + ", reserve " +
                       format_bytes(plan.reserve) + ") but " + format_bytes(free_bytes) + " is free; " + hint);
}

}  // namespace moelens
