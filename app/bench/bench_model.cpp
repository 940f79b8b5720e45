// moelens-bench model: prefill and decode speed of a model on the CPU, held
// against the machine limits measured in the same run: decode streams the
// active weights once per token, so tokens/s x active bytes / read bandwidth is
// the fraction of the bandwidth limit reached; prefill is compute, compared
// with the peak f32 FMA rate. The bandwidth of a shared machine drifts by tens of
// percent within a minute, so it is probed right before and after every decode
// repetition and each repetition is held against its own probes.
#include <cstdio>
#include <random>

#include "args.h"
#include "bench_models.h"
#include "commands.h"
#include "cpu_measure.h"
#include "device_options.h"
#include "moelens/model.h"
#include "moelens/sampling.h"
#include "moelens/session.h"

namespace moelens::bench {
namespace {

int run_model(const std::vector<std::string>& argv)
{
    std::set<std::string> options = model_options();
    options.insert({"prompt", "gen", "depth", "reps", "mb", "virtual-devices"});
    const cli::Args args(argv, options, {"json"});
    const long long prompt = args.get_int("prompt", 64);
    const long long gen = args.get_int("gen", 32);
    const long long depth = args.get_int("depth", prompt);
    const long long reps = args.get_int("reps", 3);
    const long long mb = args.get_int("mb", 1024);
    if (prompt < 1 || gen < 1 || depth < 0) throw cli::UsageError("--prompt and --gen must be >= 1, --depth >= 0");
    if (reps < 1 || reps > 100) throw cli::UsageError("--reps must be 1 .. 100");
    if (mb < 64) throw cli::UsageError("--mb must be >= 64");

    const BenchModel bm = open_bench_model(args, static_cast<int>(std::max(prompt, depth) + gen + 1));
    const std::shared_ptr<const Model>& model = bm.model;
    const LoadOptions& lo = bm.options;
    const bool on_gpu = bm.on_gpu, int8 = bm.int8;
    const std::string& label = bm.label;
    const double load_s = bm.load_seconds;
    const ModelConfig& c = model->config();
    const ModelInfo& info = model->info();
    const TokenCost cost = token_cost(c, bytes_per_weight(info), int8);

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
    const long long devices = args.get_int("virtual-devices", 0);
    if (devices < 0 || devices > 4096) throw cli::UsageError("--virtual-devices must be 0 .. 4096");
    // --virtual-devices: what the exchange costs per token, prefill and decode apart
    // (bytes, ms of dispatch + combine), per repetition.
    std::vector<double> ep_prefill_bytes, ep_decode_bytes, ep_prefill_ms, ep_decode_ms;
    const auto moved = [](const ExpertTraffic& t) { return static_cast<double>(t.dispatch_bytes() + t.combine_bytes()); };
    const auto spent = [](const ExpertTraffic& t) { return 1e3 * (t.dispatch_seconds + t.combine_seconds); };
    SessionOptions so;
    so.max_tokens = static_cast<int>(std::max(prompt, depth) + gen + 1);
    so.virtual_devices = static_cast<int>(devices);
    Session session(model, so);
    const SamplingParams greedy = SamplingParams::greedy();
    for (long long rep = 0; rep < reps; ++rep) {
        session.reset();
        const std::vector<int> p = random_tokens(static_cast<int>(prompt), c.vocab_size, rng);
        const ExpertTraffic ep0 = session.expert_traffic();
        auto t0 = Clock::now();
        session.prefill(p);
        const double prefill_s = since(t0);
        ep_prefill_bytes.push_back((moved(session.expert_traffic()) - moved(ep0)) / static_cast<double>(prompt));
        ep_prefill_ms.push_back((spent(session.expert_traffic()) - spent(ep0)) / static_cast<double>(prompt));
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
        const ExpertTraffic ep1 = session.expert_traffic();
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
        ep_decode_bytes.push_back((moved(session.expert_traffic()) - moved(ep1)) / static_cast<double>(gen));
        ep_decode_ms.push_back((spent(session.expert_traffic()) - spent(ep1)) / static_cast<double>(gen));
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
    nlohmann::json ep_json = nullptr;
    if (devices > 0)
        ep_json = {{"virtual_devices", devices},
                   {"prefill_exchange_bytes_per_token", summary_json(summarize(ep_prefill_bytes))},
                   {"prefill_exchange_ms_per_token", summary_json(summarize(ep_prefill_ms))},
                   {"decode_exchange_bytes_per_token", summary_json(summarize(ep_decode_bytes))},
                   {"decode_exchange_ms_per_token", summary_json(summarize(ep_decode_ms))},
                   {"devices_per_token_layer", session.expert_traffic().mean_devices_touched()},
                   {"expert_imbalance", session.expert_traffic().imbalance()}};
    if (args.flag("json")) {
        const nlohmann::json j = {
            {"expert_parallel", ep_json},
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
    if (devices > 0) {
        const ExpertTraffic& t = session.expert_traffic();
        std::printf("experts on %lld virtual devices: %.2f devices per token and layer, imbalance %.2f\n", devices,
                    t.mean_devices_touched(), t.imbalance());
        std::printf("  exchange per token: prefill %s bytes, %s ms; decode %s bytes, %s ms (dispatch + combine)\n",
                    format_summary(summarize(ep_prefill_bytes), 0).c_str(), format_summary(summarize(ep_prefill_ms), 4).c_str(),
                    format_summary(summarize(ep_decode_bytes), 0).c_str(), format_summary(summarize(ep_decode_ms), 4).c_str());
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
    "[--prompt P] [--gen G] [--depth D] [--reps R] [--mb N] [--json] [--virtual-devices D] "
    "[--device cpu|cuda[:N]] [--gpu-mode fast|precise] [--gpu-cache auto|f32|bf16|fp8] [--gpu-context N] [--weights-memory auto|resident|mapped]",
    "prefill and decode tokens/s, as fractions of the peak FMA rate and the read-bandwidth limit", run_model};

}  // namespace moelens::bench
