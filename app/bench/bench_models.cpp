#include "bench_models.h"

#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "device_options.h"
#include "moelens/synthetic.h"

namespace moelens::bench {
namespace {

std::filesystem::path default_cache_dir()
{
    if (const char* d = std::getenv("MOELENS_BENCH_CACHE"); d && *d) return d;
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::filesystem::path(x) / "moelens" / "bench";
    if (const char* h = std::getenv("HOME"); h && *h) return std::filesystem::path(h) / ".cache" / "moelens" / "bench";
    return std::filesystem::temp_directory_path() / "moelens-bench";
}

// Brings the checkpoint into the page cache, so the first repetition does not
// time the disk.
void preload(const std::filesystem::path& dir)
{
    std::vector<char> buf(1 << 22);
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        if (e.path().extension() != ".safetensors") continue;
        std::ifstream f(e.path(), std::ios::binary);
        while (f.read(buf.data(), static_cast<std::streamsize>(buf.size())) || f.gcount() > 0) {
        }
    }
}

}  // namespace

std::vector<int> random_tokens(int n, int vocab, std::mt19937& rng)
{
    std::uniform_int_distribution<int> d(0, vocab - 1);
    std::vector<int> t(n);
    for (int& v : t) v = d(rng);
    return t;
}

double peak_rss_bytes()
{
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_maxrss) * 1024.0;  // Linux reports KiB
}

std::set<std::string> model_options()
{
    return cli::with_device_options({"synthetic", "model", "layers", "dtype", "threads", "cache"});
}

BenchModel open_bench_model(const cli::Args& args, int context)
{
    const bool synthetic = args.get("synthetic").has_value();
    if (synthetic == args.get("model").has_value())
        throw cli::UsageError("give exactly one of --synthetic v2-lite and --model DIR");
    cli::require_device(args);  // before a synthetic checkpoint is written for nothing
    const std::string dtype = args.get("dtype").value_or("bf16");
    const bool int8 = dtype == "int8";
    std::filesystem::path dir;
    std::filesystem::path cache_root = args.get("cache") ? std::filesystem::path(*args.get("cache")) : default_cache_dir();
    std::string label;
    if (synthetic) {
        SyntheticModelSpec spec;
        spec.preset = *args.get("synthetic");
        spec.layers = static_cast<int>(args.get_int("layers", 6));
        if (dtype == "bf16" || dtype == "int8")
            spec.dtype = DType::BF16;  // int8 is quantised from BF16 at load
        else if (dtype == "f16")
            spec.dtype = DType::F16;
        else if (dtype == "f32")
            spec.dtype = DType::F32;
        else
            throw cli::UsageError("--dtype must be bf16, f16, f32 or int8 (got '" + dtype + "')");
        synthetic_model_config(spec);  // refuses a bad preset or layer count before any writing
        dir = cache_root / (spec.preset + "-L" + std::to_string(spec.layers) + "-" + dtype_name(spec.dtype));
        if (!synthetic_model_present(dir, spec)) {
            std::fprintf(stderr, "writing synthetic %s (%d layers, %s) to %s ...\n", spec.preset.c_str(), spec.layers,
                         dtype.c_str(), dir.c_str());
            const auto t0 = Clock::now();
            write_synthetic_model(dir, spec);
            std::fprintf(stderr, "written in %.1f s\n", since(t0));
        }
        label = "synthetic " + spec.preset + ", " + std::to_string(spec.layers) + " layers, " + dtype;
    } else {
        if (args.get("dtype") && !int8)
            throw cli::UsageError("--model runs the checkpoint's own dtype; --dtype may only be int8 there");
        dir = *args.get("model");
        label = dir.string() + (int8 ? ", int8" : "");
    }

    preload(dir);
    const long long threads = args.get_int("threads", 0);
    if (threads < 0 || threads > 1024) throw cli::UsageError("--threads must be 0 (all) .. 1024");
    LoadOptions lo;
    lo.threads = static_cast<unsigned>(threads);
    cli::apply_device_options(args, lo);
    // On a GPU the CPU's bandwidth and FMA limits say nothing: they are skipped
    // (scripts/gpu-check measures the card's copy bandwidth beside this run).
    const bool on_gpu = parse_device(lo.device).cuda;
    if (on_gpu && !args.get("gpu-context")) lo.gpu.context = context;
    if (int8) {
        lo.weights = WeightsFormat::int8;
        lo.cache_dir = cache_root / "q8";
    }
    const auto tl = Clock::now();
    BenchModel out;
    out.model = load_model(dir, lo);
    out.load_seconds = since(tl);
    out.label = label;
    out.int8 = int8;
    out.on_gpu = on_gpu;
    out.options = lo;
    return out;
}

StepCost step_cost(const ModelConfig& c, double bytes_per_weight, bool int8)
{
    const double q8 = int8 ? 1.0 + 4.0 / 64.0 : bytes_per_weight;
    const double hidden = c.hidden_size, H = c.num_attention_heads;
    const double dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim, dv = c.v_head_dim, dc = c.kv_lora_rank;
    StepCost s;
    for (int l = 0; l < c.num_hidden_layers; ++l) {
        if (c.q_lora_rank == 0)
            s.fixed += H * (dn + dr) * hidden * q8;
        else
            s.fixed += (c.q_lora_rank * hidden + H * (dn + dr) * c.q_lora_rank) * q8;
        s.fixed += ((dc + dr) * hidden + hidden * H * dv) * q8;
        s.fixed += H * (dn + dv) * dc * bytes_per_weight;  // kv_b_proj
        if (c.is_moe_layer(l)) {
            s.fixed += c.n_routed_experts * hidden * bytes_per_weight;  // router
            s.fixed += 3.0 * hidden * c.moe_intermediate_size * c.n_shared_experts * q8;
        } else {
            s.fixed += 3.0 * hidden * c.intermediate_size * q8;
        }
    }
    s.fixed += static_cast<double>(c.vocab_size) * hidden * q8;  // lm_head
    s.expert = 3.0 * hidden * c.moe_intermediate_size * q8;
    s.embedding_row = hidden * bytes_per_weight;
    return s;
}

TokenCost token_cost(const ModelConfig& c, double bytes_per_weight, bool int8)
{
    int moe_layers = 0;
    for (int l = 0; l < c.num_hidden_layers; ++l) moe_layers += c.is_moe_layer(l);
    const double k = static_cast<double>(c.num_experts_per_tok) * moe_layers;
    // One sequence's step: the fixed part and its own top-k experts per MoE layer.
    // At one byte per weight the same sums count parameters (2 FLOP each).
    const StepCost bytes = step_cost(c, bytes_per_weight, int8), params = step_cost(c, 1.0, false);
    TokenCost t;
    t.active_bytes = bytes.fixed + bytes.expert * k + bytes.embedding_row;
    t.flops = 2.0 * (params.fixed + params.expert * k);
    t.prefill_flops = t.flops - 2.0 * static_cast<double>(c.vocab_size) * c.hidden_size;  // logits of the last token only
    return t;
}

double bytes_per_weight(const ModelInfo& info) { return info.weights_dtype == "F32" ? 4.0 : 2.0; }

}  // namespace moelens::bench
