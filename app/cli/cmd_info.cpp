// moelens-cli info: what a model folder holds, checked without loading weights.
#include <cstdio>

#include "args.h"
#include "commands.h"
#include "moelens/model.h"

namespace moelens::cli {
namespace {

std::string human_count(std::uint64_t n)
{
    char buf[64];
    if (n >= 1000000000ull)
        std::snprintf(buf, sizeof buf, "%.2f B", n / 1e9);
    else if (n >= 1000000ull)
        std::snprintf(buf, sizeof buf, "%.2f M", n / 1e6);
    else
        std::snprintf(buf, sizeof buf, "%.1f K", n / 1e3);
    return buf;
}

int run_info(const std::vector<std::string>& argv)
{
    Args args(argv, {"model"}, {});
    const ModelInfo m = inspect_model(args.require("model"));
    const ModelConfig& c = m.config;
    std::printf("model: %s\n", m.dir.string().c_str());
    std::printf("architecture: %s%s\n", m.architecture.c_str(), m.is_demo ? "  [demo model: random weights]" : "");
    std::string moe_list;
    for (int l : m.moe_layers) {
        if (!moe_list.empty()) moe_list += ',';
        moe_list += std::to_string(l);
    }
    std::printf("layers: %d (%d dense, %zu MoE%s%s)\n", m.num_layers, m.num_layers - static_cast<int>(m.moe_layers.size()),
                m.moe_layers.size(), moe_list.empty() ? "" : ": ", moe_list.c_str());
    std::printf("hidden: %d, vocab: %d, heads: %d\n", c.hidden_size, c.vocab_size, c.num_attention_heads);
    std::printf("attention: MLA, q_lora_rank %s, kv_lora_rank %d, head dims nope/rope/v %d/%d/%d\n",
                c.q_lora_rank ? std::to_string(c.q_lora_rank).c_str() : "none (q_proj)", c.kv_lora_rank,
                c.qk_nope_head_dim, c.qk_rope_head_dim, c.v_head_dim);
    if (c.has_yarn)
        std::printf("rope: theta %g, YaRN factor %g from %d positions (mscale %g, mscale_all_dim %g), max %d\n",
                    c.rope_theta, c.yarn.factor, c.yarn.original_max_position_embeddings, c.yarn.mscale,
                    c.yarn.mscale_all_dim, c.max_position_embeddings);
    else
        std::printf("rope: theta %g, max %d positions\n", c.rope_theta, c.max_position_embeddings);
    if (m.n_routed_experts > 0) {
        std::printf("experts: %d routed + %d shared, top-%d, %s", m.n_routed_experts, m.n_shared_experts, m.top_k,
                    m.topk_method.c_str());
        if (m.topk_method == "group_limited_greedy") std::printf(" (%d groups, keep %d)", m.n_group, m.topk_group);
        std::printf(", routed_scaling_factor %g%s\n", c.routed_scaling_factor, c.norm_topk_prob ? ", norm_topk_prob" : "");
    }
    std::printf("parameters: %s total, %s active per token (%llu / %llu)\n", human_count(m.total_params).c_str(),
                human_count(m.active_params_per_token).c_str(), static_cast<unsigned long long>(m.total_params),
                static_cast<unsigned long long>(m.active_params_per_token));
    std::printf("weights: %s, %.1f MiB in %zu file(s)\n", m.weights_dtype.c_str(), m.bytes_on_disk / 1048576.0,
                m.weight_files.size());
    std::printf("kv cache per token (f32): latent %llu bytes vs multi-head %llu bytes (%.1fx smaller), GQA-8 %llu bytes\n",
                static_cast<unsigned long long>(m.latent_cache_bytes_per_token),
                static_cast<unsigned long long>(m.mha_cache_bytes_per_token),
                double(m.mha_cache_bytes_per_token) / double(m.latent_cache_bytes_per_token),
                static_cast<unsigned long long>(m.gqa8_cache_bytes_per_token));
    return 0;
}

}  // namespace

const Command kInfoCommand = {"info", "--model DIR",
                              "architecture, parameters (total / active per token) and cache size of a model folder",
                              run_info};

}  // namespace moelens::cli
