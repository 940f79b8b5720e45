// Tensor names and shapes of a Hugging Face DeepSeek-V2 checkpoint, and binding
// them to views into the mapped safetensors files.
#include "model/weights.h"

#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "moelens/error.h"
#include "moelens/logging.h"

namespace moelens {
namespace {

std::string shape_str(const std::vector<std::int64_t>& s)
{
    std::string out = "[";
    for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
}

std::string layer_prefix(int i) { return "model.layers." + std::to_string(i) + "."; }

}  // namespace

Checkpoint::Checkpoint(const std::filesystem::path& dir)
{
    const auto single = dir / "model.safetensors";
    const auto index = dir / "model.safetensors.index.json";
    if (std::filesystem::exists(index)) {
        m_where = index.string();
        nlohmann::json j;
        try {
            std::ifstream in(index);
            j = nlohmann::json::parse(in);
        } catch (const nlohmann::json::exception& e) {
            throw ModelError(m_where + ": not valid JSON: " + e.what());
        }
        auto wm = j.find("weight_map");
        if (wm == j.end() || !wm->is_object()) throw ModelError(m_where + ": missing object 'weight_map'");
        std::map<std::string, std::size_t> file_index;
        std::vector<std::pair<std::string, std::string>> names;
        for (auto it = wm->begin(); it != wm->end(); ++it) {
            if (!it.value().is_string())
                throw ModelError(m_where + ": weight_map entry '" + it.key() + "' is not a file name");
            const std::string file = it.value().get<std::string>();
            if (file.find('/') != std::string::npos || file.find("..") != std::string::npos)
                throw ModelError(m_where + ": weight_map entry '" + it.key() + "' names '" + file + "' outside the folder");
            names.emplace_back(it.key(), file);
            file_index.emplace(file, 0);
        }
        m_files.reserve(file_index.size());
        for (auto& [file, idx] : file_index) {
            idx = m_files.size();
            m_files.emplace_back(dir / file);
        }
        for (const auto& [name, file] : names) {
            const SafetensorsFile& f = m_files[file_index.at(file)];
            const TensorInfo* t = f.find(name);
            if (!t) throw ModelError(f.path().string() + ": missing tensor '" + name + "' (listed in " + m_where + ")");
            m_entries[name] = {&f, t};
        }
    } else if (std::filesystem::exists(single)) {
        m_where = single.string();
        m_files.emplace_back(single);
        for (const auto& [name, t] : m_files[0].tensors()) m_entries[name] = {&m_files[0], &t};
    } else {
        throw ModelError(dir.string() + ": no model.safetensors or model.safetensors.index.json");
    }
}

void Checkpoint::check_unchanged() const
{
    for (const SafetensorsFile& f : m_files)
        if (const std::uint32_t n = f.truncated_reads())
            throw ModelError(f.path().string() + ": the file was cut short on disk while the model was loaded (" +
                             std::to_string(n) + " pages read past its new end); the results were discarded: load the model again");
}

Checkpoint::Entry Checkpoint::at(const std::string& name) const
{
    auto it = m_entries.find(name);
    if (it == m_entries.end()) throw ModelError(m_where + ": missing tensor '" + name + "'");
    return it->second;
}

std::uint64_t Checkpoint::bytes_on_disk() const
{
    std::uint64_t n = 0;
    for (const auto& f : m_files) n += f.file_size();
    return n;
}

void Checkpoint::read(const std::byte* p, std::size_t n, std::byte* dst) const
{
    for (const SafetensorsFile& f : m_files)
        if (f.holds(p, n)) return f.read_mapped(p, n, dst);
    std::memcpy(dst, p, n);
}

std::vector<ExpectedTensor> expected_tensors(const ModelConfig& c)
{
    using S = std::vector<std::int64_t>;
    const std::int64_t hidden = c.hidden_size, H = c.num_attention_heads;
    const std::int64_t dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim, dv = c.v_head_dim;
    std::vector<ExpectedTensor> out;
    out.push_back({"model.embed_tokens.weight", S{c.vocab_size, hidden}});
    for (int i = 0; i < c.num_hidden_layers; ++i) {
        const std::string p = layer_prefix(i);
        out.push_back({p + "input_layernorm.weight", S{hidden}});
        out.push_back({p + "post_attention_layernorm.weight", S{hidden}});
        if (c.q_lora_rank == 0) {
            out.push_back({p + "self_attn.q_proj.weight", S{H * (dn + dr), hidden}});
        } else {
            out.push_back({p + "self_attn.q_a_proj.weight", S{c.q_lora_rank, hidden}});
            out.push_back({p + "self_attn.q_a_layernorm.weight", S{c.q_lora_rank}});
            out.push_back({p + "self_attn.q_b_proj.weight", S{H * (dn + dr), c.q_lora_rank}});
        }
        out.push_back({p + "self_attn.kv_a_proj_with_mqa.weight", S{c.kv_lora_rank + dr, hidden}});
        out.push_back({p + "self_attn.kv_a_layernorm.weight", S{c.kv_lora_rank}});
        out.push_back({p + "self_attn.kv_b_proj.weight", S{H * (dn + dv), c.kv_lora_rank}});
        out.push_back({p + "self_attn.o_proj.weight", S{hidden, H * dv}});
        auto ffn = [&](const std::string& q, std::int64_t width) {
            out.push_back({q + "gate_proj.weight", S{width, hidden}});
            out.push_back({q + "up_proj.weight", S{width, hidden}});
            out.push_back({q + "down_proj.weight", S{hidden, width}});
        };
        if (c.is_moe_layer(i)) {
            out.push_back({p + "mlp.gate.weight", S{c.n_routed_experts, hidden}});
            for (int e = 0; e < c.n_routed_experts; ++e)
                ffn(p + "mlp.experts." + std::to_string(e) + ".", c.moe_intermediate_size);
            if (c.n_shared_experts > 0)
                ffn(p + "mlp.shared_experts.", std::int64_t(c.moe_intermediate_size) * c.n_shared_experts);
        } else {
            ffn(p + "mlp.", c.intermediate_size);
        }
    }
    out.push_back({"model.norm.weight", S{hidden}});
    if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", S{c.vocab_size, hidden}});
    return out;
}

namespace {

const TensorInfo& checked(const Checkpoint& ckpt, const ExpectedTensor& e, const SafetensorsFile** file_out = nullptr)
{
    const auto entry = ckpt.at(e.name);
    const TensorInfo& t = *entry.tensor;
    const std::string where = entry.file->path().string() + ": tensor '" + e.name + "'";
    if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16)
        throw ModelError(where + " has dtype " + dtype_name(t.dtype) + ", expected BF16, F16 or F32");
    if (t.shape != e.shape)
        throw ModelError(where + " has shape " + shape_str(t.shape) + ", expected " + shape_str(e.shape));
    if (file_out) *file_out = entry.file;
    return t;
}

}  // namespace

void check_weights(const ModelConfig& c, const Checkpoint& ckpt)
{
    for (const auto& e : expected_tensors(c)) checked(ckpt, e);
}

ModelWeights bind_weights(const ModelConfig& c, const Checkpoint& ckpt)
{
    std::map<std::string, std::vector<std::int64_t>> shapes;
    for (const auto& e : expected_tensors(c)) shapes.emplace(e.name, e.shape);
    std::set<std::string> used;

    auto view = [&](const std::string& name) {
        const SafetensorsFile* f = nullptr;
        const TensorInfo& t = checked(ckpt, {name, shapes.at(name)}, &f);
        used.insert(name);
        WeightView w{f->data(t), t.dtype, static_cast<int>(t.shape[0]), t.shape.size() > 1 ? static_cast<int>(t.shape[1]) : 1};
        return w;
    };
    auto vec = [&](const std::string& name) {
        const SafetensorsFile* f = nullptr;
        checked(ckpt, {name, shapes.at(name)}, &f);
        used.insert(name);
        return f->to_f32(name);
    };
    auto ffn = [&](const std::string& p) { return FfnWeights{view(p + "gate_proj.weight"), view(p + "up_proj.weight"), view(p + "down_proj.weight")}; };

    ModelWeights w;
    w.embed = view("model.embed_tokens.weight");
    w.final_norm = vec("model.norm.weight");
    w.lm_head = c.tie_word_embeddings ? w.embed : view("lm_head.weight");
    w.layers.resize(c.num_hidden_layers);
    for (int i = 0; i < c.num_hidden_layers; ++i) {
        const std::string p = layer_prefix(i);
        LayerWeights& L = w.layers[i];
        L.input_norm = vec(p + "input_layernorm.weight");
        L.post_attention_norm = vec(p + "post_attention_layernorm.weight");
        if (c.q_lora_rank == 0) {
            L.q_proj = view(p + "self_attn.q_proj.weight");
        } else {
            L.q_a_proj = view(p + "self_attn.q_a_proj.weight");
            L.q_a_norm = vec(p + "self_attn.q_a_layernorm.weight");
            L.q_b_proj = view(p + "self_attn.q_b_proj.weight");
        }
        L.kv_a_proj = view(p + "self_attn.kv_a_proj_with_mqa.weight");
        L.kv_a_norm = vec(p + "self_attn.kv_a_layernorm.weight");
        L.kv_b_proj = view(p + "self_attn.kv_b_proj.weight");
        L.o_proj = view(p + "self_attn.o_proj.weight");
        L.moe = c.is_moe_layer(i);
        if (L.moe) {
            L.gate = view(p + "mlp.gate.weight");
            for (int e = 0; e < c.n_routed_experts; ++e) L.experts.push_back(ffn(p + "mlp.experts." + std::to_string(e) + "."));
            if (c.n_shared_experts > 0) L.shared = ffn(p + "mlp.shared_experts.");
        } else {
            L.mlp = ffn(p + "mlp.");
        }
    }
    if (used.size() < ckpt.tensor_count())
        engine_log().warn("checkpoint holds {} tensors the model does not use", ckpt.tensor_count() - used.size());
    return w;
}

std::vector<NamedMatrix> matrices(ModelWeights& w)
{
    std::vector<NamedMatrix> out;
    const auto add = [&](const std::string& name, WeightView& v, bool quantizable = true) {
        if (!v.empty()) out.push_back({name, &v, quantizable});
    };
    const auto ffn = [&](const std::string& p, FfnWeights& f) {
        add(p + "gate", f.gate);
        add(p + "up", f.up);
        add(p + "down", f.down);
    };
    for (std::size_t i = 0; i < w.layers.size(); ++i) {
        LayerWeights& L = w.layers[i];
        const std::string p = "layers." + std::to_string(i) + ".";
        add(p + "q_proj", L.q_proj);
        add(p + "q_a_proj", L.q_a_proj);
        add(p + "q_b_proj", L.q_b_proj);
        add(p + "kv_a_proj", L.kv_a_proj);
        add(p + "kv_b_proj", L.kv_b_proj, false);
        add(p + "o_proj", L.o_proj);
        if (L.moe) {
            add(p + "router", L.gate, false);
            for (std::size_t e = 0; e < L.experts.size(); ++e) ffn(p + "experts." + std::to_string(e) + ".", L.experts[e]);
            ffn(p + "shared.", L.shared);
        } else {
            ffn(p + "mlp.", L.mlp);
        }
    }
    add("lm_head", w.lm_head);
    return out;
}

}  // namespace moelens
