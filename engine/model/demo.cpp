// The built-in demo checkpoint: seeded random weights in the Hugging Face
// DeepSeek-V2-Lite layout, at a size that is written in well under a second and
// decodes fast on any CPU, with MoE settings chosen so that routing has
// something to show (16 routed experts in 4 groups = 4 "devices").
#include "moelens/demo.h"

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "model/weights.h"
#include "moelens/error.h"
#include "moelens/safetensors.h"

namespace moelens {
namespace {

// splitmix64: tiny, fast and identical on every platform (std distributions are not).
class DemoRng {
public:
    explicit DemoRng(std::uint64_t seed) : m_state(seed) {}
    std::uint64_t next()
    {
        std::uint64_t z = (m_state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    // Uniform in [-a, a).
    float uniform(float a) { return (static_cast<float>(next() >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * a; }

private:
    std::uint64_t m_state;
};

nlohmann::ordered_json demo_config_json()
{
    // Keys and values follow deepseek-ai/DeepSeek-V2-Lite's config.json, scaled down.
    return {
        {"architectures", {"DeepseekV2ForCausalLM"}},
        {"model_type", "deepseek_v2"},
        {"moelens_demo", true},
        {"attention_bias", false},
        {"attention_dropout", 0.0},
        {"aux_loss_alpha", 0.001},
        {"bos_token_id", 0},
        {"eos_token_id", 1},
        {"ep_size", 1},
        {"first_k_dense_replace", 1},
        {"hidden_act", "silu"},
        {"hidden_size", 64},
        {"initializer_range", 0.02},
        {"intermediate_size", 128},
        {"kv_lora_rank", 32},
        {"max_position_embeddings", 4096},
        {"moe_intermediate_size", 32},
        {"moe_layer_freq", 1},
        {"n_group", 4},
        {"n_routed_experts", 16},
        {"n_shared_experts", 2},
        {"norm_topk_prob", false},
        {"num_attention_heads", 4},
        {"num_experts_per_tok", 4},
        {"num_hidden_layers", 4},
        {"num_key_value_heads", 4},
        {"pretraining_tp", 1},
        {"q_lora_rank", nullptr},
        {"qk_nope_head_dim", 16},
        {"qk_rope_head_dim", 8},
        {"rms_norm_eps", 1e-06},
        {"rope_scaling",
         {{"beta_fast", 32}, {"beta_slow", 1}, {"factor", 4.0}, {"mscale", 0.707}, {"mscale_all_dim", 0.707},
          {"original_max_position_embeddings", 1024}, {"type", "yarn"}}},
        {"rope_theta", 10000},
        {"routed_scaling_factor", 1.0},
        {"scoring_func", "softmax"},
        {"seq_aux", true},
        // Tied: the embedding is the bulk of a model this small (vocab x hidden), and
        // tying halves the file.
        {"tie_word_embeddings", true},
        {"topk_group", 2},
        {"topk_method", "group_limited_greedy"},
        {"torch_dtype", "bfloat16"},
        {"use_cache", true},
        // Every id of the DeepSeek tokenizer shipped in resources/ (added tokens end at 128814).
        {"vocab_size", 128815},
        {"v_head_dim", 16},
    };
}

}  // namespace

ModelConfig demo_model_config() { return parse_model_config_text(demo_config_json().dump(), "demo config"); }

void write_demo_model(const std::filesystem::path& dir, const DemoModelSpec& spec)
{
    const auto tok_json = spec.tokenizer_dir / "tokenizer.json";
    const auto tok_cfg = spec.tokenizer_dir / "tokenizer_config.json";
    for (const auto& f : {tok_json, tok_cfg})
        if (!std::filesystem::is_regular_file(f)) throw ModelError(f.string() + ": tokenizer file not found");
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw ModelError(dir.string() + ": cannot create folder: " + ec.message());

    const ModelConfig c = demo_model_config();
    DemoRng rng(spec.seed);
    std::vector<TensorToWrite> tensors;
    for (const auto& e : expected_tensors(c)) {
        TensorToWrite t{e.name, DType::BF16, e.shape, {}};
        std::uint64_t numel = 1;
        for (auto d : e.shape) numel *= static_cast<std::uint64_t>(d);
        t.bytes.resize(numel * 2);
        auto* out = reinterpret_cast<std::uint16_t*>(t.bytes.data());
        const bool norm = e.shape.size() == 1;
        // Uniform with the variance of N(0, 1/fan_in) keeps activations O(1) through
        // the layers; the router gets a wider one so different tokens pick visibly
        // different experts.
        float a = norm ? 0.0f : std::sqrt(3.0f / static_cast<float>(e.shape[1]));
        if (e.name == "model.embed_tokens.weight") a = 0.1f * std::sqrt(3.0f);
        if (e.name.ends_with("mlp.gate.weight")) a *= 8.0f;
        // With tied embeddings a token's own row dominates a residual stream that
        // starts as that row, and sampling would repeat it: small embedding rows let
        // the layers' outputs dominate, and the final norm's scale gives logits of
        // a few units.
        const float norm_value = e.name == "model.norm.weight" ? 3.0f : 1.0f;
        for (std::uint64_t i = 0; i < numel; ++i) out[i] = f32_to_bf16(norm ? norm_value : rng.uniform(a));
        tensors.push_back(std::move(t));
    }
    write_safetensors(dir / "model.safetensors", tensors, {{"format", "pt"}});

    std::ofstream cfg(dir / "config.json", std::ios::trunc);
    cfg << demo_config_json().dump(2) << "\n";
    if (!cfg) throw ModelError((dir / "config.json").string() + ": write failed");
    cfg.close();
    for (const auto& f : {tok_json, tok_cfg}) {
        std::filesystem::copy_file(f, dir / f.filename(), std::filesystem::copy_options::overwrite_existing, ec);
        if (ec) throw ModelError((dir / f.filename()).string() + ": cannot copy tokenizer: " + ec.message());
        // The installed tokenizer may be read-only; the demo folder is the user's.
        std::filesystem::permissions(dir / f.filename(), std::filesystem::perms::owner_write,
                                     std::filesystem::perm_options::add, ec);
    }
}

}  // namespace moelens
