// The summary of a checkpoint (ModelInfo), for a loaded model and for a model
// folder checked without loading it.
#include "model/model_info.h"

#include <algorithm>
#include <set>

namespace moelens {

ModelInfo make_model_info(const std::filesystem::path& dir, const ModelConfig& c, const Checkpoint& ckpt)
{
    ModelInfo info;
    info.dir = dir;
    info.architecture = c.architecture + " (" + c.model_type + ")";
    info.config = c;
    info.num_layers = c.num_hidden_layers;
    for (int i = 0; i < c.num_hidden_layers; ++i)
        if (c.is_moe_layer(i)) info.moe_layers.push_back(i);
    info.n_routed_experts = c.n_routed_experts;
    info.n_shared_experts = c.n_shared_experts;
    info.top_k = c.num_experts_per_tok;
    info.n_group = c.topk_method == TopkMethod::group_limited_greedy ? c.n_group : 1;
    info.topk_group = c.topk_method == TopkMethod::group_limited_greedy ? c.topk_group : 1;
    info.topk_method = c.topk_method == TopkMethod::greedy ? "greedy" : "group_limited_greedy";

    std::set<std::string> dtypes;
    std::uint64_t routed_params = 0;  // all routed experts of all MoE layers
    for (const auto& e : expected_tensors(c)) {
        const auto entry = ckpt.at(e.name);
        info.total_params += entry.tensor->numel();
        dtypes.insert(dtype_name(entry.tensor->dtype));
        if (e.name.find(".mlp.experts.") != std::string::npos) routed_params += entry.tensor->numel();
    }
    // Active per token: everything except the routed experts a token does not use.
    if (c.n_routed_experts > 0)
        info.active_params_per_token = info.total_params - routed_params / c.n_routed_experts * (c.n_routed_experts - c.num_experts_per_tok);
    else
        info.active_params_per_token = info.total_params;
    info.weights_dtype = dtypes.size() == 1 ? *dtypes.begin() : "mixed";
    info.bytes_on_disk = ckpt.bytes_on_disk();
    for (const auto& f : ckpt.files()) info.weight_files.push_back(f.path());

    const std::uint64_t L = c.num_hidden_layers;
    const std::uint64_t per_head = c.qk_nope_head_dim + c.qk_rope_head_dim + c.v_head_dim;
    info.cache_element_bytes = sizeof(float);
    info.latent_cache_bytes_per_token = L * (c.kv_lora_rank + c.qk_rope_head_dim) * sizeof(float);
    info.mha_cache_bytes_per_token = L * c.num_attention_heads * per_head * sizeof(float);
    info.gqa8_cache_bytes_per_token = L * std::min(8, c.num_attention_heads) * per_head * sizeof(float);
    info.is_demo = c.moelens_demo;
    return info;
}

ModelInfo inspect_model(const std::filesystem::path& dir)
{
    const ModelConfig c = parse_model_config(dir / "config.json");
    const Checkpoint ckpt(dir);
    check_weights(c, ckpt);
    return make_model_info(dir, c, ckpt);
}

}  // namespace moelens
