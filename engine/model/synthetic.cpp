// Random-weight checkpoints in the real DeepSeek-V2-Lite shapes (see synthetic.h).
#include "moelens/synthetic.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/weights.h"
#include "moelens/error.h"

namespace moelens {
namespace {

nlohmann::ordered_json v2_lite_config(int layers, DType dtype)
{
    // deepseek-ai/DeepSeek-V2-Lite config.json, with num_hidden_layers and
    // torch_dtype taken from the spec.
    return {
        {"architectures", {"DeepseekV2ForCausalLM"}},
        {"model_type", "deepseek_v2"},
        {"attention_bias", false},
        {"bos_token_id", 100000},
        {"eos_token_id", 100001},
        {"first_k_dense_replace", 1},
        {"hidden_act", "silu"},
        {"hidden_size", 2048},
        {"intermediate_size", 10944},
        {"kv_lora_rank", 512},
        {"max_position_embeddings", 163840},
        {"moe_intermediate_size", 1408},
        {"moe_layer_freq", 1},
        {"n_group", 1},
        {"n_routed_experts", 64},
        {"n_shared_experts", 2},
        {"norm_topk_prob", false},
        {"num_attention_heads", 16},
        {"num_experts_per_tok", 6},
        {"num_hidden_layers", layers},
        {"num_key_value_heads", 16},
        {"q_lora_rank", nullptr},
        {"qk_nope_head_dim", 128},
        {"qk_rope_head_dim", 64},
        {"rms_norm_eps", 1e-06},
        {"rope_scaling",
         {{"beta_fast", 32}, {"beta_slow", 1}, {"factor", 40}, {"mscale", 0.707}, {"mscale_all_dim", 0.707},
          {"original_max_position_embeddings", 4096}, {"type", "yarn"}}},
        {"rope_theta", 10000},
        {"routed_scaling_factor", 1.0},
        {"scoring_func", "softmax"},
        {"tie_word_embeddings", false},
        {"topk_group", 1},
        {"topk_method", "greedy"},
        {"torch_dtype", dtype == DType::F32 ? "float32" : dtype == DType::F16 ? "float16" : "bfloat16"},
        {"v_head_dim", 128},
        {"vocab_size", 102400},
    };
}

void check_spec(const SyntheticModelSpec& spec)
{
    if (spec.preset != "v2-lite")
        throw ModelError("synthetic model: unknown preset '" + spec.preset + "', expected 'v2-lite'");
    if (spec.layers < 1 || spec.layers > 1000)
        throw ModelError("synthetic model: layers = " + std::to_string(spec.layers) + ", expected 1..1000");
    if (spec.dtype != DType::BF16 && spec.dtype != DType::F16 && spec.dtype != DType::F32)
        throw ModelError(std::string("synthetic model: dtype ") + dtype_name(spec.dtype) + ", expected BF16, F16 or F32");
}

std::string spec_tag(const SyntheticModelSpec& spec)
{
    return spec.preset + "/" + std::to_string(spec.layers) + "/" + dtype_name(spec.dtype) + "/" +
           std::to_string(spec.seed);
}

// splitmix64: fast and the same everywhere (std distributions are not).
class Rng {
public:
    explicit Rng(std::uint64_t seed) : m_state(seed) {}
    std::uint64_t next()
    {
        std::uint64_t z = (m_state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }

private:
    std::uint64_t m_state;
};

// IEEE binary16 of a float well inside the f16 range (round to nearest even).
std::uint16_t f32_to_f16(float f)
{
    std::uint32_t b;
    std::memcpy(&b, &f, 4);
    const std::uint32_t sign = (b >> 16) & 0x8000u;
    const int exp = static_cast<int>((b >> 23) & 0xff) - 127 + 15;
    std::uint32_t mant = b & 0x7fffffu;
    if (exp <= 0) return static_cast<std::uint16_t>(sign);  // the synthetic weights never get this small
    std::uint32_t h = sign | (static_cast<std::uint32_t>(exp) << 10) | (mant >> 13);
    const std::uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
    return static_cast<std::uint16_t>(h);
}

struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

ModelConfig synthetic_model_config(const SyntheticModelSpec& spec)
{
    check_spec(spec);
    return parse_model_config_text(v2_lite_config(spec.layers, spec.dtype).dump(), "synthetic " + spec.preset);
}

bool synthetic_model_present(const std::filesystem::path& dir, const SyntheticModelSpec& spec)
{
    std::error_code ec;
    if (!std::filesystem::is_regular_file(dir / "config.json", ec) ||
        !std::filesystem::is_regular_file(dir / "model.safetensors", ec))
        return false;
    try {
        const SafetensorsFile f(dir / "model.safetensors");
        const auto it = f.metadata().find("moelens_synthetic");
        return it != f.metadata().end() && it->second == spec_tag(spec);
    } catch (const ModelError&) {
        return false;
    }
}

void write_synthetic_model(const std::filesystem::path& dir, const SyntheticModelSpec& spec)
{
    const ModelConfig c = synthetic_model_config(spec);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw ModelError(dir.string() + ": cannot create folder: " + ec.message());

    // Header: every tensor back to back in the order the forward step reads them.
    const std::size_t esize = dtype_size(spec.dtype);
    const std::vector<ExpectedTensor> tensors = expected_tensors(c);
    nlohmann::ordered_json header;
    header["__metadata__"] = {{"format", "pt"}, {"moelens_synthetic", spec_tag(spec)}};
    std::uint64_t offset = 0;
    for (const auto& e : tensors) {
        std::uint64_t numel = 1;
        for (auto d : e.shape) numel *= static_cast<std::uint64_t>(d);
        header[e.name] = {{"dtype", dtype_name(spec.dtype)}, {"shape", e.shape},
                          {"data_offsets", {offset, offset + numel * esize}}};
        offset += numel * esize;
    }
    std::string text = header.dump();
    // Pad with spaces so the data starts 64-byte aligned (whole cache lines).
    while ((8 + text.size()) % 64 != 0) text.push_back(' ');

    const auto final_path = dir / "model.safetensors";
    const auto tmp_path = dir / "model.safetensors.partial";
    std::unique_ptr<std::FILE, FileCloser> out(std::fopen(tmp_path.c_str(), "wb"));
    if (!out) throw ModelError(tmp_path.string() + ": cannot open for writing");
    const auto write = [&](const void* p, std::size_t n) {
        if (std::fwrite(p, 1, n, out.get()) != n) throw ModelError(tmp_path.string() + ": write failed (disk full?)");
    };
    const std::uint64_t hlen = text.size();
    std::uint8_t len_bytes[8];
    for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<std::uint8_t>(hlen >> (8 * i));
    write(len_bytes, 8);
    write(text.data(), text.size());

    Rng rng(spec.seed);
    constexpr std::size_t kChunk = 1 << 20;  // elements per write
    std::vector<std::byte> buf(kChunk * esize);
    for (const auto& e : tensors) {
        std::uint64_t numel = 1;
        for (auto d : e.shape) numel *= static_cast<std::uint64_t>(d);
        const bool norm = e.shape.size() == 1;
        // Uniform with the variance of N(0, 1/fan_in) keeps activations O(1) through
        // the layers; unit-variance embeddings; norms of 1. The router gets a wider
        // spread so tokens pick different experts, as trained routers do.
        float a = norm ? 0.0f : std::sqrt(3.0f / static_cast<float>(e.shape[1]));
        if (e.name == "model.embed_tokens.weight") a = std::sqrt(3.0f);
        if (e.name.ends_with("mlp.gate.weight")) a *= 8.0f;
        for (std::uint64_t done = 0; done < numel;) {
            const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, numel - done));
            for (std::size_t i = 0; i < n; ++i) {
                const float v = norm ? 1.0f : (static_cast<float>(rng.next() >> 40) * (2.0f / 16777216.0f) - 1.0f) * a;
                switch (spec.dtype) {
                case DType::BF16: reinterpret_cast<std::uint16_t*>(buf.data())[i] = f32_to_bf16(v); break;
                case DType::F16: reinterpret_cast<std::uint16_t*>(buf.data())[i] = f32_to_f16(v); break;
                default: reinterpret_cast<float*>(buf.data())[i] = v; break;
                }
            }
            write(buf.data(), n * esize);
            done += n;
        }
    }
    if (std::fflush(out.get()) != 0) throw ModelError(tmp_path.string() + ": write failed (disk full?)");
    out.reset();

    std::ofstream cfg(dir / "config.json", std::ios::trunc);
    cfg << v2_lite_config(spec.layers, spec.dtype).dump(2) << "\n";
    cfg.close();
    if (!cfg) throw ModelError((dir / "config.json").string() + ": write failed");
    std::filesystem::rename(tmp_path, final_path, ec);
    if (ec) throw ModelError(final_path.string() + ": cannot rename from " + tmp_path.filename().string() + ": " + ec.message());
}

}  // namespace moelens
