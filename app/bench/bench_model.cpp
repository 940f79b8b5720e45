// moelens-bench model: prefill and decode speed of a model on the CPU, held
// against the machine limits measured in the same run: decode streams the
// active weights once per token, so tokens/s x active bytes / read bandwidth is
// the fraction of the bandwidth limit reached; prefill is compute, compared
// with the peak f32 FMA rate. The bandwidth of a shared machine drifts by tens of
// percent within a minute, so it is probed right before and after every decode
// repetition and each repetition is held against its own probes.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "args.h"
#include "commands.h"
#include "cpu_measure.h"
#include "device_options.h"
#include "moelens/model.h"
#include "moelens/sampling.h"
#include "moelens/session.h"
#include "moelens/synthetic.h"

namespace moelens::bench {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::filesystem::path default_cache_dir()
{
    if (const char* d = std::getenv("MOELENS_BENCH_CACHE"); d && *d) return d;
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::filesystem::path(x) / "moelens" / "bench";
    if (const char* h = std::getenv("HOME"); h && *h) return std::filesystem::path(h) / ".cache" / "moelens" / "bench";
    return std::filesystem::temp_directory_path() / "moelens-bench";
}

// Weights a decode step reads and multiply-adds it does, per token.
struct TokenCost {
    double active_bytes = 0.0;   // attention + dense FFN or (router + shared + top-k experts) + one embedding row + lm_head
    double flops = 0.0;          // 2 per multiply-add of every matrix product of one decoded token (lm_head included)
    double prefill_flops = 0.0;  // the same for a prompt token: prefill computes logits for the last token only
};

// bytes_per_weight: of the stored dtype; int8: the q8 copies hold 1 + 4/64 bytes
// per weight, and kv_b_proj, the router and the embedding stay as stored (see
// moelens/model.h WeightsFormat).
TokenCost token_cost(const ModelConfig& c, double bytes_per_weight, bool int8)
{
    const double q8 = int8 ? 1.0 + 4.0 / 64.0 : bytes_per_weight;
    const double hidden = c.hidden_size, H = c.num_attention_heads;
    const double dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim, dv = c.v_head_dim, dc = c.kv_lora_rank;
    double params = 0.0, bytes = 0.0;
    const auto add = [&](double n, double bpw) {
        params += n;
        bytes += n * bpw;
    };
    for (int l = 0; l < c.num_hidden_layers; ++l) {
        if (c.q_lora_rank == 0)
            add(H * (dn + dr) * hidden, q8);
        else
            add(c.q_lora_rank * hidden + H * (dn + dr) * c.q_lora_rank, q8);
        add((dc + dr) * hidden + hidden * H * dv, q8);
        add(H * (dn + dv) * dc, bytes_per_weight);  // kv_b_proj
        if (c.is_moe_layer(l)) {
            add(c.n_routed_experts * hidden, bytes_per_weight);  // router
            add(3.0 * hidden * c.moe_intermediate_size * (c.n_shared_experts + c.num_experts_per_tok), q8);
        } else {
            add(3.0 * hidden * c.intermediate_size, q8);
        }
    }
    TokenCost t;
    t.prefill_flops = 2.0 * params;
    add(static_cast<double>(c.vocab_size) * hidden, q8);  // lm_head
    t.flops = 2.0 * params;
    t.active_bytes = bytes + hidden * bytes_per_weight;  // + the embedding row
    return t;
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

int run_model(const std::vector<std::string>& argv)
{
    const cli::Args args(argv,
                         cli::with_device_options({"synthetic", "model", "layers", "dtype", "threads", "prompt", "gen",
                                                   "depth", "reps", "cache", "mb"}),
                         {"json"});
    const bool synthetic = args.get("synthetic").has_value();
    if (synthetic == args.get("model").has_value())
        throw cli::UsageError("give exactly one of --synthetic v2-lite and --model DIR");
    const long long threads = args.get_int("threads", 0);
    const long long prompt = args.get_int("prompt", 64);
    const long long gen = args.get_int("gen", 32);
    const long long depth = args.get_int("depth", prompt);
    const long long reps = args.get_int("reps", 3);
    const long long mb = args.get_int("mb", 1024);
    if (threads < 0 || threads > 1024) throw cli::UsageError("--threads must be 0 (all) .. 1024");
    if (prompt < 1 || gen < 1 || depth < 0) throw cli::UsageError("--prompt and --gen must be >= 1, --depth >= 0");
    if (reps < 1 || reps > 100) throw cli::UsageError("--reps must be 1 .. 100");
    if (mb < 64) throw cli::UsageError("--mb must be >= 64");
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
    LoadOptions lo;
    lo.threads = static_cast<unsigned>(threads);
    cli::apply_device_options(args, lo);
    // On a GPU the CPU's bandwidth and FMA limits say nothing: they are skipped
    // (scripts/gpu-check measures the card's copy bandwidth beside this run).
    const bool on_gpu = parse_device(lo.device).cuda;
    if (on_gpu && !args.get("gpu-context")) lo.gpu.context = static_cast<int>(std::max(prompt, depth) + gen + 1);
    if (int8) {
        lo.weights = WeightsFormat::int8;
        lo.cache_dir = cache_root / "q8";
    }
    const auto tl = Clock::now();
    const std::shared_ptr<const Model> model = load_model(dir, lo);
    const double load_s = since(tl);
    const ModelConfig& c = model->config();
    const ModelInfo& info = model->info();
    const double bpw = info.weights_dtype == "F32" ? 4.0 : 2.0;
    const TokenCost cost = token_cost(c, bpw, int8);

    // The machine limits, with the model's thread count, in this run.
    CpuProbe probe(model->threads());
    const std::size_t probe_bytes = static_cast<std::size_t>(mb) << 20;
    std::vector<double> bw_all;  // GB/s of every probe pass in this run
    // n read passes now (none on a GPU run); returns their GB/s.
    const auto probe_bw = [&](int n) {
        std::vector<double> gbs;
        for (int i = 0; i < n && !on_gpu; ++i)
            gbs.push_back(static_cast<double>(probe_bytes) / probe.read_pass(probe_bytes) / 1e9);
        bw_all.insert(bw_all.end(), gbs.begin(), gbs.end());
        return gbs;
    };
    if (!on_gpu) probe.read_pass(probe_bytes);  // faults the probe's buffer in
    probe_bw(5);
    const Summary peak = on_gpu ? Summary{} : measure_fma_peak(probe, 3);

    std::mt19937 rng(11);
    std::vector<double> prefill_tps, decode_tps, sample_share;
    std::vector<double> decode_frac;  // per repetition: tokens/s x active bytes / the bandwidth probed around it
    // Per decoded token, ms: the forward step's parts (Session::stage_times), sampling, the whole token.
    const char* const stage_names[] = {"attention", "router", "shared experts", "routed experts", "dense FFN",
                                       "lm_head", "sampling", "token"};
    std::vector<double> stage_ms[8];
    // The same split of the prefill (ms for the whole prompt; sampling does not apply).
    std::vector<double> prefill_ms[8];
    SessionOptions so;
    so.max_tokens = static_cast<int>(std::max(prompt, depth) + gen + 1);
    Session session(model, so);
    const SamplingParams greedy = SamplingParams::greedy();
    for (long long rep = 0; rep < reps; ++rep) {
        session.reset();
        const std::vector<int> p = random_tokens(static_cast<int>(prompt), c.vocab_size, rng);
        auto t0 = Clock::now();
        session.prefill(p);
        const double prefill_s = since(t0);
        prefill_tps.push_back(static_cast<double>(prompt) / prefill_s);
        const StageTimes& ps = session.stage_times();  // reset() cleared it: the prefill's own
        const double pst[] = {ps.attention, ps.router, ps.shared_experts, ps.routed_experts, ps.dense_ffn, ps.lm_head, 0.0,
                              prefill_s};
        for (int i = 0; i < 8; ++i) prefill_ms[i].push_back(1e3 * pst[i]);

        if (depth != prompt) {
            session.reset();
            const std::vector<int> ctx = random_tokens(static_cast<int>(std::max(1LL, depth)), c.vocab_size, rng);
            session.prefill(ctx);
        }
        Sampler sampler(greedy);
        double sample_s = 0.0;
        const StageTimes before = session.stage_times();
        std::vector<double> around = probe_bw(3);
        t0 = Clock::now();
        for (long long g = 0; g < gen; ++g) {
            const auto ts = Clock::now();
            const int next = sampler.sample(session.logits(), session.tokens());
            sample_s += since(ts);
            session.step(next);
        }
        const double dt = since(t0);
        decode_tps.push_back(static_cast<double>(gen) / dt);
        const std::vector<double> after_bw = probe_bw(3);
        around.insert(around.end(), after_bw.begin(), after_bw.end());
        if (!on_gpu) decode_frac.push_back(decode_tps.back() * cost.active_bytes / (summarize(around).median * 1e9));
        sample_share.push_back(sample_s / dt);
        const StageTimes& after = session.stage_times();
        const double g = static_cast<double>(gen);
        stage_ms[0].push_back(1e3 * (after.attention - before.attention) / g);
        stage_ms[1].push_back(1e3 * (after.router - before.router) / g);
        stage_ms[2].push_back(1e3 * (after.shared_experts - before.shared_experts) / g);
        stage_ms[3].push_back(1e3 * (after.routed_experts - before.routed_experts) / g);
        stage_ms[4].push_back(1e3 * (after.dense_ffn - before.dense_ffn) / g);
        stage_ms[5].push_back(1e3 * (after.lm_head - before.lm_head) / g);
        stage_ms[6].push_back(1e3 * sample_s / g);
        stage_ms[7].push_back(1e3 * dt / g);
    }
    const Summary pre = summarize(prefill_tps);
    const Summary dec = summarize(decode_tps);
    const Summary samp = summarize(sample_share);
    const Summary bw = summarize(bw_all);
    const double limit_tps = bw.median * 1e9 / cost.active_bytes;
    const Summary frac_bw = summarize(decode_frac);
    const double prefill_gflops = pre.median * cost.prefill_flops / 1e9;
    const double frac_peak = on_gpu ? 0.0 : prefill_gflops / peak.median;
    const double rss = peak_rss_bytes();

    nlohmann::json stages_json = nlohmann::json::object();
    nlohmann::json prefill_json = nlohmann::json::object();
    for (int i = 0; i < 8; ++i) {
        stages_json[stage_names[i]] = summary_json(summarize(stage_ms[i]));
        if (i != 6) prefill_json[i == 7 ? "prompt" : stage_names[i]] = summary_json(summarize(prefill_ms[i]));
    }
    if (args.flag("json")) {
        const nlohmann::json j = {
            {"model", label},
            {"device", lo.device},
            {"threads", model->threads()},
            {"kernels", cpu_kernel_level()},
            {"weights_dtype", int8 ? "int8 (q8 from " + info.weights_dtype + ")" : info.weights_dtype},
            {"load_seconds", load_s},
            {"resident_weight_bytes", info.resident_bytes},
            {"read_gb_per_s", summary_json(bw)},
            {"fma_peak_gflop_per_s", summary_json(peak)},
            {"active_bytes_per_token", cost.active_bytes},
            {"flops_per_decode_token", cost.flops},
            {"flops_per_prompt_token", cost.prefill_flops},
            {"decode_limit_tokens_per_s", limit_tps},
            {"prompt_tokens", prompt},
            {"prefill_tokens_per_s", summary_json(pre)},
            {"prefill_gflop_per_s", prefill_gflops},
            {"prefill_fraction_of_peak_flops", frac_peak},
            {"gen_tokens", gen},
            {"depth", depth},
            {"decode_tokens_per_s", summary_json(dec)},
            {"decode_fraction_of_bandwidth_limit", frac_bw.median},
            {"decode_fraction_of_bandwidth_limit_by_repetition", summary_json(frac_bw)},
            {"sampling_share_of_decode", summary_json(samp)},
            {"decode_ms_per_token_by_stage", stages_json},
            {"prefill_ms_by_stage", prefill_json},
            {"peak_rss_bytes", rss},
            {"latent_cache_bytes_per_token", info.latent_cache_bytes_per_token},
        };
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("model              %s (%s weights%s)\n", label.c_str(), info.weights_dtype.c_str(),
                int8 ? ", quantised to int8 at load" : "");
    std::printf("threads            %u, kernels %s, loaded in %.2f s\n", model->threads(), cpu_kernel_level().c_str(),
                load_s);
    if (!on_gpu) {
        const std::string rest = info.resident_bytes ? "copied into large pages at load (" +
                                                           std::to_string(info.resident_bytes / (1 << 20)) + " MiB)"
                                                     : "file-mapped (4 KiB pages)";
        std::printf("weights memory     %s%s\n", int8 ? "int8 in large pages; the rest " : "", rest.c_str());
    }
    if (on_gpu) {
        std::printf("device             %s (%s mode; CPU limits not measured)\n", lo.device.c_str(),
                    lo.gpu.mode == GpuMode::precise ? "precise" : "fast");
        std::printf("active bytes/token %.3f GB\n", cost.active_bytes / 1e9);
    } else {
        std::printf("read bandwidth     %s GB/s (every probe pass of the run)\n", format_summary(bw, 2).c_str());
        std::printf("peak f32 FMA       %s GFLOP/s\n", format_summary(peak, 1).c_str());
        std::printf("active bytes/token %.3f GB -> decode limit %.2f tokens/s\n", cost.active_bytes / 1e9, limit_tps);
    }
    if (on_gpu) {
        std::printf("prefill %5lld tok  %s tokens/s = %.1f GFLOP/s\n", prompt, format_summary(pre, 2).c_str(),
                    prefill_gflops);
        std::printf("decode  %5lld tok  %s tokens/s after %lld tokens\n", gen, format_summary(dec, 2).c_str(), depth);
    } else {
        std::printf("prefill %5lld tok  %s tokens/s = %.1f GFLOP/s (%.1f%% of peak)\n", prompt,
                    format_summary(pre, 2).c_str(), prefill_gflops, 100.0 * frac_peak);
        std::printf("decode  %5lld tok  %s tokens/s after %lld tokens\n", gen, format_summary(dec, 2).c_str(), depth);
        const Summary pct{100.0 * frac_bw.median, 100.0 * frac_bw.min, 100.0 * frac_bw.max, frac_bw.reps};
        std::printf("                   = %s %% of the bandwidth limit (each repetition against the bandwidth\n"
                    "                     probed just before and after it)\n",
                    format_summary(pct, 1).c_str());
    }
    const double token_ms = summarize(stage_ms[7]).median;
    std::printf("decode time per token by stage (ms, median of the repetitions; %% of the token):\n");
    for (int i = 0; i < 8; ++i) {
        const Summary st = summarize(stage_ms[i]);
        std::printf("  %-16s %s  %5.1f%%\n", stage_names[i], format_summary(st, 3).c_str(), 100.0 * st.median / token_ms);
    }
    std::printf("  (a decoded token runs the shared and routed experts as one sum, timed as routed experts)\n");
    const double prompt_ms = summarize(prefill_ms[7]).median;
    std::printf("prefill time by stage (ms for the %lld prompt tokens, median; %% of the prefill):\n", prompt);
    for (int i = 0; i < 8; ++i) {
        if (i == 6) continue;
        const Summary st = summarize(prefill_ms[i]);
        std::printf("  %-16s %s  %5.1f%%\n", i == 7 ? "prompt" : stage_names[i], format_summary(st, 1).c_str(),
                    100.0 * st.median / prompt_ms);
    }
    std::printf("peak RSS           %.2f GB\n", rss / 1e9);
    std::printf("latent cache       %llu bytes/token (all layers)\n",
                static_cast<unsigned long long>(info.latent_cache_bytes_per_token));
    std::printf("(median (min-max, n=repetitions))\n");
    return 0;
}

}  // namespace

const Command kModelCommand{
    "model",
    "(--synthetic v2-lite [--layers N] | --model DIR) [--dtype bf16|f16|f32|int8] [--cache DIR] [--threads T] "
    "[--prompt P] [--gen G] [--depth D] [--reps R] [--mb N] [--json] "
    "[--device cpu|cuda[:N]] [--gpu-mode fast|precise] [--gpu-cache auto|f32|bf16|fp8] [--gpu-context N] [--weights-memory auto|resident|mapped]",
    "prefill and decode tokens/s, as fractions of the peak FMA rate and the read-bandwidth limit", run_model};

}  // namespace moelens::bench
