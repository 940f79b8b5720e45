#pragma once
// A DeepSeek-V2-family checkpoint (Hugging Face folder: config.json plus
// model.safetensors or sharded model-0000N-of-0000M.safetensors with
// model.safetensors.index.json): its configuration, a summary for display, and
// the loaded, memory-mapped model that sessions run.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "moelens/devices.h"

namespace moelens {

enum class TopkMethod { greedy, group_limited_greedy };

// rope_scaling of type "yarn" (arXiv 2309.00071); absent = plain RoPE.
struct YarnScaling {
    double factor = 1.0;
    int original_max_position_embeddings = 0;
    double beta_fast = 32.0;
    double beta_slow = 1.0;
    double mscale = 1.0;
    double mscale_all_dim = 0.0;  // 0 = not set
};

// Every config.json key that changes the math, after validation. Plain data,
// read-only once parsed. Every tensor shape follows from these (docs/engine.md).
struct ModelConfig {
    std::string model_type;         // "deepseek_v2"
    std::string architecture;       // architectures[0], e.g. "DeepseekV2ForCausalLM"
    int vocab_size = 0;
    int hidden_size = 0;
    int intermediate_size = 0;      // dense FFN width
    int moe_intermediate_size = 0;  // width of one expert
    int num_hidden_layers = 0;
    int num_attention_heads = 0;    // H
    int q_lora_rank = 0;            // 0 = no query compression (plain q_proj, as in V2-Lite)
    int kv_lora_rank = 0;           // d_c, latent width cached per token
    int qk_nope_head_dim = 0;       // d_n
    int qk_rope_head_dim = 0;       // d_r (decoupled RoPE key, shared by all heads)
    int v_head_dim = 0;             // d_v
    int n_routed_experts = 0;       // 0 = dense model
    int n_shared_experts = 0;
    int num_experts_per_tok = 0;    // top-k
    int first_k_dense_replace = 0;
    int moe_layer_freq = 1;
    TopkMethod topk_method = TopkMethod::greedy;
    int n_group = 1;
    int topk_group = 1;
    double routed_scaling_factor = 1.0;
    bool norm_topk_prob = false;
    double rms_norm_eps = 1e-6;
    double rope_theta = 10000.0;
    bool has_yarn = false;
    YarnScaling yarn;
    int max_position_embeddings = 0;
    int bos_token_id = -1;             // -1 = none
    std::vector<int> eos_token_ids;    // config.json allows one id or a list
    bool tie_word_embeddings = false;
    std::string torch_dtype;           // informational
    bool moelens_demo = false;         // "moelens_demo": true marks the built-in random-weight demo

    bool is_moe_layer(int layer) const
    {
        return n_routed_experts > 0 && layer >= first_k_dense_replace && layer % moe_layer_freq == 0;
    }
};

// Parses and validates config.json; throws ModelError naming the file, key and
// value for anything missing, unsupported or inconsistent.
ModelConfig parse_model_config(const std::filesystem::path& config_json);
// Same from a JSON text (`source` names it in messages).
ModelConfig parse_model_config_text(std::string_view json_text, const std::string& source);

// A summary for display (moelens-cli info, the UI's model panel).
struct ModelInfo {
    std::filesystem::path dir;
    std::string architecture;        // e.g. "DeepseekV2ForCausalLM (deepseek_v2)"
    ModelConfig config;
    int num_layers = 0;
    std::vector<int> moe_layers;     // decoder-layer indices that use MoE
    int n_routed_experts = 0;
    int n_shared_experts = 0;
    int top_k = 0;
    int n_group = 1;                 // expert groups (= devices in device-limited routing)
    int topk_group = 1;
    std::string topk_method;         // "greedy" | "group_limited_greedy"
    std::uint64_t total_params = 0;          // every weight in the checkpoint
    std::uint64_t active_params_per_token = 0;  // dense part + shared + top-k routed experts
    std::string weights_dtype;       // "BF16", "F16", "F32" or "mixed"
    std::uint64_t bytes_on_disk = 0; // safetensors files
    std::vector<std::filesystem::path> weight_files;
    // Cache per token over all layers, in the engine's cache element type (f32):
    std::uint64_t latent_cache_bytes_per_token = 0;  // (kv_lora + d_r) x layers
    std::uint64_t mha_cache_bytes_per_token = 0;     // H x (d_n + d_r + d_v) x layers: plain multi-head K and V
    std::uint64_t gqa8_cache_bytes_per_token = 0;    // the same with 8 key/value heads
    int cache_element_bytes = 4;
    bool is_demo = false;
    // Set by load_model: bytes of weights copied into large-page memory at load
    // (WeightsMemory), 0 when every matrix stays file-mapped.
    std::uint64_t resident_bytes = 0;
};

struct LoadProgress {
    std::uint64_t done = 0;
    std::uint64_t total = 0;
    std::string stage;  // "config", "mapping", "validating", "binding", "ready"
};

// How the matrices are held for compute: as stored in the checkpoint, or
// quantised at load to int8 with one scale per 64 values (about half the bytes
// of BF16 per decoded token; kv_b_proj, the router and the embedding stay as stored).
enum class WeightsFormat { stored, int8 };

// Where the matrices decode streams live. A file mapping has 4 KiB pages, so
// decode walks a page-table entry every 4 KiB it reads (in a virtual machine a
// nested walk), which can cost more than the read itself: resident copies them
// at load into memory offered for 2 MiB pages; automatic does so when they fit in
// the memory the system has available and keeps them mapped otherwise. int8
// weights are always resident. The embedding (one row per token) stays mapped.
enum class WeightsMemory { automatic, resident, mapped };

struct LoadOptions {
    unsigned threads = 0;  // CPU worker threads; 0 = one per hardware thread
    // Called from the loading thread; return false to cancel (load_model throws Cancelled).
    std::function<bool(const LoadProgress&)> progress;
    WeightsFormat weights = WeightsFormat::stored;
    // Where int8 weights are kept between runs (one file per checkpoint, rebuilt
    // when the checkpoint changes), so a second load maps them instead of
    // quantising again. Empty = quantise on every load.
    std::filesystem::path cache_dir;
    WeightsMemory memory = WeightsMemory::automatic;
    // "cpu", "cuda" or "cuda:N" (parse_device); a GPU that is missing or too
    // small makes load_model throw BackendError saying why.
    std::string device = "cpu";
    GpuOptions gpu;
};

class ModelImpl;

// A loaded model: immutable after loading, shared by any number of sessions.
// Weights keep their stored dtype (or int8), resident or mapped (WeightsMemory).
class Model {
public:
    explicit Model(std::unique_ptr<ModelImpl> impl);
    ~Model();
    Model(const Model&) = delete;
    Model& operator=(const Model&) = delete;

    const ModelInfo& info() const;
    const ModelConfig& config() const;
    unsigned threads() const;

    // Engine-internal (sessions reach the weights and the backend through it).
    const ModelImpl& impl() const { return *m_impl; }

private:
    std::unique_ptr<ModelImpl> m_impl;
};

// Loads a model folder: parses config.json, maps and validates every weight file,
// binds each expected tensor with its expected shape. Throws ModelError (or
// Cancelled when the progress callback returns false).
std::shared_ptr<const Model> load_model(const std::filesystem::path& dir, const LoadOptions& options = {});

// Validation and summary without keeping the weights: checks config.json and
// every safetensors header against the expected tensor list. Throws ModelError.
ModelInfo inspect_model(const std::filesystem::path& dir);

}  // namespace moelens
