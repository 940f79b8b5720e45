// config.json -> ModelConfig, validated in one place. Anything this engine does
// not implement is refused with the key and the value, never silently defaulted.
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "moelens/error.h"
#include "moelens/model.h"

namespace moelens {
namespace {

using nlohmann::json;

class ConfigReader {
public:
    ConfigReader(const json& j, std::string source) : m_j(j), m_source(std::move(source)) {}

    [[noreturn]] void fail(const std::string& key, const std::string& what) const
    {
        throw ModelError(m_source + ": key '" + key + "' " + what);
    }

    const json* find(const std::string& key) const
    {
        auto it = m_j.find(key);
        return it == m_j.end() ? nullptr : &*it;
    }

    int integer(const std::string& key) const
    {
        const json* v = find(key);
        if (!v) fail(key, "is missing");
        if (!v->is_number_integer()) fail(key, "must be an integer, found " + v->dump());
        const auto x = v->get<std::int64_t>();
        if (x < 0 || x > (1ll << 30)) fail(key, "has out-of-range value " + v->dump());
        return static_cast<int>(x);
    }
    int integer_or(const std::string& key, int fallback) const
    {
        const json* v = find(key);
        return (!v || v->is_null()) ? fallback : integer(key);
    }
    double number(const std::string& key) const
    {
        const json* v = find(key);
        if (!v) fail(key, "is missing");
        if (!v->is_number()) fail(key, "must be a number, found " + v->dump());
        return v->get<double>();
    }
    double number_or(const std::string& key, double fallback) const
    {
        const json* v = find(key);
        return (!v || v->is_null()) ? fallback : number(key);
    }
    bool boolean_or(const std::string& key, bool fallback) const
    {
        const json* v = find(key);
        if (!v || v->is_null()) return fallback;
        if (!v->is_boolean()) fail(key, "must be true or false, found " + v->dump());
        return v->get<bool>();
    }
    std::string string_or(const std::string& key, const std::string& fallback) const
    {
        const json* v = find(key);
        if (!v || v->is_null()) return fallback;
        if (!v->is_string()) fail(key, "must be a string, found " + v->dump());
        return v->get<std::string>();
    }

private:
    const json& m_j;
    std::string m_source;
};

void require(bool ok, const ConfigReader& r, const std::string& key, const std::string& what)
{
    if (!ok) r.fail(key, what);
}

void validate(const ModelConfig& c, const ConfigReader& r)
{
    auto positive = [&](const char* key, int v) { require(v > 0, r, key, "must be positive, found " + std::to_string(v)); };
    positive("vocab_size", c.vocab_size);
    positive("hidden_size", c.hidden_size);
    positive("num_hidden_layers", c.num_hidden_layers);
    positive("num_attention_heads", c.num_attention_heads);
    positive("kv_lora_rank", c.kv_lora_rank);
    positive("qk_nope_head_dim", c.qk_nope_head_dim);
    positive("qk_rope_head_dim", c.qk_rope_head_dim);
    positive("v_head_dim", c.v_head_dim);
    positive("max_position_embeddings", c.max_position_embeddings);
    require(c.qk_rope_head_dim % 2 == 0, r, "qk_rope_head_dim",
            "must be even (RoPE rotates pairs), found " + std::to_string(c.qk_rope_head_dim));
    require(c.moe_layer_freq >= 1, r, "moe_layer_freq", "must be at least 1, found " + std::to_string(c.moe_layer_freq));
    require(c.rms_norm_eps > 0, r, "rms_norm_eps", "must be positive");
    require(c.rope_theta > 1, r, "rope_theta", "must be greater than 1");

    bool any_dense = false;
    for (int i = 0; i < c.num_hidden_layers; ++i) any_dense |= !c.is_moe_layer(i);
    if (any_dense) positive("intermediate_size", c.intermediate_size);

    if (c.n_routed_experts > 0) {
        positive("moe_intermediate_size", c.moe_intermediate_size);
        positive("num_experts_per_tok", c.num_experts_per_tok);
        require(c.num_experts_per_tok <= c.n_routed_experts, r, "num_experts_per_tok",
                "is " + std::to_string(c.num_experts_per_tok) + ", more than n_routed_experts " +
                    std::to_string(c.n_routed_experts));
        require(c.routed_scaling_factor > 0, r, "routed_scaling_factor", "must be positive");
        if (c.topk_method == TopkMethod::group_limited_greedy) {
            positive("n_group", c.n_group);
            positive("topk_group", c.topk_group);
            require(c.n_routed_experts % c.n_group == 0, r, "n_group",
                    "is " + std::to_string(c.n_group) + ", which does not divide n_routed_experts " +
                        std::to_string(c.n_routed_experts));
            require(c.topk_group <= c.n_group, r, "topk_group",
                    "is " + std::to_string(c.topk_group) + ", more than n_group " + std::to_string(c.n_group));
            require(c.num_experts_per_tok <= c.topk_group * (c.n_routed_experts / c.n_group), r, "num_experts_per_tok",
                    "is " + std::to_string(c.num_experts_per_tok) + ", more than the experts in topk_group groups");
        }
    }
    require(c.bos_token_id < c.vocab_size, r, "bos_token_id",
            "is " + std::to_string(c.bos_token_id) + ", outside vocab_size " + std::to_string(c.vocab_size));
    for (int e : c.eos_token_ids)
        require(e >= 0 && e < c.vocab_size, r, "eos_token_id",
                "is " + std::to_string(e) + ", outside vocab_size " + std::to_string(c.vocab_size));
    if (c.has_yarn) {
        require(c.yarn.factor >= 1, r, "rope_scaling.factor", "must be at least 1");
        require(c.yarn.original_max_position_embeddings > 0, r, "rope_scaling.original_max_position_embeddings",
                "must be positive");
        require(c.yarn.beta_fast > 0 && c.yarn.beta_slow > 0, r, "rope_scaling.beta_fast",
                "and beta_slow must be positive");
    }
}

}  // namespace

ModelConfig parse_model_config_text(std::string_view text, const std::string& source)
{
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        throw ModelError(source + ": not valid JSON: " + e.what());
    }
    if (!j.is_object()) throw ModelError(source + ": expected a JSON object");
    ConfigReader r(j, source);
    ModelConfig c;

    c.model_type = r.string_or("model_type", "");
    require(!c.model_type.empty(), r, "model_type", "is missing");
    require(c.model_type == "deepseek_v2", r, "model_type",
            "is '" + c.model_type + "'; only 'deepseek_v2' (DeepSeek-V2, V2-Lite, V2.5, Coder-V2) is supported");
    if (const json* a = r.find("architectures"); a && a->is_array() && !a->empty() && (*a)[0].is_string())
        c.architecture = (*a)[0].get<std::string>();
    else
        c.architecture = "DeepseekV2ForCausalLM";

    c.vocab_size = r.integer("vocab_size");
    c.hidden_size = r.integer("hidden_size");
    c.num_hidden_layers = r.integer("num_hidden_layers");
    c.num_attention_heads = r.integer("num_attention_heads");
    c.q_lora_rank = r.integer_or("q_lora_rank", 0);
    c.kv_lora_rank = r.integer("kv_lora_rank");
    c.qk_nope_head_dim = r.integer("qk_nope_head_dim");
    c.qk_rope_head_dim = r.integer("qk_rope_head_dim");
    c.v_head_dim = r.integer("v_head_dim");
    c.n_routed_experts = r.integer_or("n_routed_experts", 0);
    c.n_shared_experts = r.integer_or("n_shared_experts", 0);
    c.first_k_dense_replace = r.integer_or("first_k_dense_replace", 0);
    c.moe_layer_freq = r.integer_or("moe_layer_freq", 1);
    c.intermediate_size = r.integer_or("intermediate_size", 0);
    if (c.n_routed_experts > 0) {
        c.moe_intermediate_size = r.integer("moe_intermediate_size");
        c.num_experts_per_tok = r.integer("num_experts_per_tok");
    }
    const std::string topk = r.string_or("topk_method", "greedy");
    if (topk == "greedy")
        c.topk_method = TopkMethod::greedy;
    else if (topk == "group_limited_greedy")
        c.topk_method = TopkMethod::group_limited_greedy;
    else
        r.fail("topk_method", "is '" + topk + "'; supported: 'greedy', 'group_limited_greedy'");
    c.n_group = r.integer_or("n_group", 1);
    c.topk_group = r.integer_or("topk_group", 1);
    c.routed_scaling_factor = r.number_or("routed_scaling_factor", 1.0);
    c.norm_topk_prob = r.boolean_or("norm_topk_prob", false);
    const std::string scoring = r.string_or("scoring_func", "softmax");
    require(scoring == "softmax", r, "scoring_func", "is '" + scoring + "'; only 'softmax' is supported (DeepSeek-V2)");
    const std::string act = r.string_or("hidden_act", "silu");
    require(act == "silu", r, "hidden_act", "is '" + act + "'; only 'silu' is supported");
    require(!r.boolean_or("attention_bias", false), r, "attention_bias", "is true; biased projections are not supported");
    if (const json* kvh = r.find("num_key_value_heads"); kvh && !kvh->is_null()) {
        const int n = r.integer("num_key_value_heads");
        require(n == c.num_attention_heads, r, "num_key_value_heads",
                "is " + std::to_string(n) + " but MLA needs it equal to num_attention_heads " +
                    std::to_string(c.num_attention_heads));
    }
    c.rms_norm_eps = r.number_or("rms_norm_eps", 1e-6);
    c.rope_theta = r.number_or("rope_theta", 10000.0);
    c.max_position_embeddings = r.integer("max_position_embeddings");
    c.bos_token_id = r.integer_or("bos_token_id", -1);
    if (const json* e = r.find("eos_token_id"); e && !e->is_null()) {
        if (e->is_array()) {
            for (const auto& x : *e) {
                if (!x.is_number_integer()) r.fail("eos_token_id", "must hold integers, found " + x.dump());
                c.eos_token_ids.push_back(x.get<int>());
            }
        } else {
            c.eos_token_ids.push_back(r.integer("eos_token_id"));
        }
    }
    c.tie_word_embeddings = r.boolean_or("tie_word_embeddings", false);
    c.torch_dtype = r.string_or("torch_dtype", "");
    c.moelens_demo = r.boolean_or("moelens_demo", false);

    if (const json* rs = r.find("rope_scaling"); rs && !rs->is_null()) {
        if (!rs->is_object()) r.fail("rope_scaling", "must be an object or null, found " + rs->dump());
        ConfigReader s(*rs, source + ": rope_scaling");
        std::string type = s.string_or("type", s.string_or("rope_type", ""));
        if (type != "yarn") r.fail("rope_scaling.type", "is '" + type + "'; only 'yarn' is supported");
        c.has_yarn = true;
        c.yarn.factor = s.number("factor");
        c.yarn.original_max_position_embeddings = s.integer("original_max_position_embeddings");
        c.yarn.beta_fast = s.number_or("beta_fast", 32.0);
        c.yarn.beta_slow = s.number_or("beta_slow", 1.0);
        c.yarn.mscale = s.number_or("mscale", 1.0);
        c.yarn.mscale_all_dim = s.number_or("mscale_all_dim", 0.0);
    }

    validate(c, r);
    return c;
}

ModelConfig parse_model_config(const std::filesystem::path& config_json)
{
    std::ifstream in(config_json, std::ios::binary);
    if (!in) throw ModelError(config_json.string() + ": cannot open (a model folder needs config.json)");
    std::ostringstream ss;
    ss << in.rdbuf();
    return parse_model_config_text(ss.str(), config_json.string());
}

}  // namespace moelens
