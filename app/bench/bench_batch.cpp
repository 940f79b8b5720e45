// moelens-bench batch: decoding many sequences in one step (moelens/scheduler.h)
// against the batched bandwidth limit. A step reads attention, dense FFN, shared
// experts, routers and lm_head once, and each routed expert that any of its rows
// chose once; that union's bytes over the read bandwidth probed around the run is
// the time the step cannot beat, so rows / that time is the limit in tokens/s.
// Batch sizes are run in turn within each repetition (alternated), so the ratios
// between them come from the same minutes of a drifting machine.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>

#include "args.h"
#include "moe_options.h"
#include "bench_models.h"
#include "commands.h"
#include "cpu_measure.h"
#include "moelens/scheduler.h"

namespace moelens::bench {
namespace {

std::vector<int> parse_sizes(const std::string& text)
{
    std::vector<int> out;
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ',')) {
        char* end = nullptr;
        const long v = std::strtol(item.c_str(), &end, 10);
        if (item.empty() || *end != '\0' || v < 1 || v > 256)
            throw cli::UsageError("--sequences takes a comma-separated list of 1 .. 256 (got '" + text + "')");
        out.push_back(static_cast<int>(v));
    }
    if (out.empty()) throw cli::UsageError("--sequences is empty");
    return out;
}

// One batch size, one repetition.
struct BatchRun {
    double decode_seconds = 0.0;
    long long decode_rows = 0;
    int decode_steps = 0;
    double union_bytes = 0.0;      // summed over the decode steps
    double bandwidth_gbs = 0.0;    // median of the probes around the run
    double prefill_seconds = 0.0;  // prompts read (shared prefixes reused), until the first all-decode step
    double prefill_unshared_seconds = 0.0;  // the same prompts with sharing off (--shared-prefix only)
    std::uint64_t cache_bytes = 0; // the pool at its largest
    int reused_tokens = 0;
    StageTimes decode_stages;      // summed over the decode steps
    ExpertTraffic traffic;         // --virtual-devices: the whole run (prompts and decoding)
    long long tokens_computed = 0; // rows of every step of the run
};

struct Setup {
    std::shared_ptr<const Model> model;
    StepCost cost;
    int prompt = 0, gen = 0, shared = 0;
    MoeSettings moe;  // every sequence's routing (--experts-per-token etc.)
    int devices = 0;  // --virtual-devices
};

std::vector<std::vector<int>> make_prompts(const Setup& st, int n, std::mt19937& rng)
{
    const int vocab = st.model->config().vocab_size;
    const std::vector<int> common = random_tokens(st.shared, vocab, rng);
    std::vector<std::vector<int>> out;
    for (int i = 0; i < n; ++i) {
        std::vector<int> p = common;
        const std::vector<int> rest = random_tokens(st.prompt - st.shared, vocab, rng);
        p.insert(p.end(), rest.begin(), rest.end());
        out.push_back(std::move(p));
    }
    return out;
}

// Reads the prompts only (max_new_tokens 0): the prefill time, with or without sharing.
double prefill_only(const Setup& st, const std::vector<std::vector<int>>& prompts, bool share)
{
    SchedulerOptions opt;
    opt.share_prefixes = share;
    Scheduler s(st.model, opt);
    for (const auto& p : prompts) {
        GenerationRequest r;
        r.prompt = p;
        r.sampling.max_new_tokens = 0;
        r.moe = st.moe;
        s.submit(std::move(r));
    }
    const auto t0 = Clock::now();
    s.run();
    return since(t0);
}

BatchRun run_batch(const Setup& st, int n, std::mt19937& rng, CpuProbe& probe, std::size_t probe_bytes, bool on_gpu)
{
    const ModelConfig& c = st.model->config();
    const int E = std::max(1, c.n_routed_experts);
    const std::vector<std::vector<int>> prompts = make_prompts(st, n, rng);
    BatchRun out;
    if (st.shared > 0) out.prefill_unshared_seconds = prefill_only(st, prompts, false);

    std::vector<double> bw;
    const auto probe_bw = [&] {
        for (int i = 0; i < 3 && !on_gpu; ++i) bw.push_back(static_cast<double>(probe_bytes) / probe.read_pass(probe_bytes) / 1e9);
    };
    probe_bw();

    // Per MoE layer (by index among the MoE layers), the experts the step's rows chose.
    std::map<int, int> moe_index;
    for (int l = 0; l < c.num_hidden_layers; ++l)
        if (c.is_moe_layer(l)) moe_index.emplace(l, static_cast<int>(moe_index.size()));
    std::vector<char> chosen(moe_index.size() * static_cast<std::size_t>(E), 0);
    bool prompt_rows = false;

    SchedulerOptions so;
    so.virtual_devices = st.devices;
    Scheduler s(st.model, so);
    SamplingParams greedy = SamplingParams::greedy();
    greedy.max_new_tokens = st.gen;
    greedy.stop_at_eos = false;
    for (const auto& p : prompts) {
        GenerationRequest r;
        r.prompt = p;
        r.sampling = greedy;
        r.moe = st.moe;
        r.on_event = [&](const TokenEvent& e) {
            prompt_rows |= e.is_prompt;
            for (const RoutingRecord& rec : e.routing)
                for (int id : rec.experts) chosen[static_cast<std::size_t>(moe_index[rec.layer]) * E + id] = 1;
            return true;
        };
        r.on_finish = [&](SequenceId, const GenerationResult& g) { out.reused_tokens += g.reused_tokens; };
        s.submit(std::move(r));
    }
    const auto t0 = Clock::now();
    bool decoding = false;
    while (s.running() > 0) {
        std::fill(chosen.begin(), chosen.end(), 0);
        prompt_rows = false;
        const StageTimes before = s.stage_times();
        const auto ts = Clock::now();
        s.step();
        out.tokens_computed += s.last_step_rows();
        const double dt = since(ts);
        const StageTimes& after = s.stage_times();
        out.cache_bytes = std::max(out.cache_bytes, s.pool_stats().bytes_allocated);
        if (prompt_rows) continue;
        if (!decoding) {
            decoding = true;
            out.prefill_seconds = std::chrono::duration<double>(ts - t0).count();
        }
        const long long rows = s.last_step_rows();
        if (rows == 0) continue;
        const long long distinct = std::count(chosen.begin(), chosen.end(), 1);
        out.union_bytes += st.cost.fixed + st.cost.expert * static_cast<double>(distinct) +
                           st.cost.embedding_row * static_cast<double>(rows);
        out.decode_rows += rows;
        out.decode_seconds += dt;
        ++out.decode_steps;
        StageTimes& d = out.decode_stages;
        d.attention += after.attention - before.attention;
        d.router += after.router - before.router;
        d.shared_experts += after.shared_experts - before.shared_experts;
        d.routed_experts += after.routed_experts - before.routed_experts;
        d.dense_ffn += after.dense_ffn - before.dense_ffn;
        d.lm_head += after.lm_head - before.lm_head;
        d.total += after.total - before.total;
    }
    out.traffic = s.expert_traffic();
    probe_bw();
    out.bandwidth_gbs = bw.empty() ? 0.0 : summarize(bw).median;
    return out;
}

int run_batch_command(const std::vector<std::string>& argv)
{
    std::set<std::string> options = cli::with_moe_options(model_options());
    options.insert({"sequences", "prompt", "gen", "shared-prefix", "reps", "mb", "virtual-devices"});
    const cli::Args args(argv, options, {"json"});
    const std::vector<int> sizes = parse_sizes(args.get("sequences").value_or("1,2,4,8,16"));
    const long long prompt = args.get_int("prompt", 64);
    const long long gen = args.get_int("gen", 32);
    const long long shared = args.get_int("shared-prefix", 0);
    const long long reps = args.get_int("reps", 3);
    const long long mb = args.get_int("mb", 512);
    if (prompt < 1 || prompt > 1 << 20) throw cli::UsageError("--prompt must be 1 .. 1048576");
    if (gen < 2 || gen > 1 << 20) throw cli::UsageError("--gen must be 2 .. 1048576 (the first token comes with the prompt)");
    if (shared < 0 || shared > prompt) throw cli::UsageError("--shared-prefix must be 0 .. --prompt");
    if (reps < 1 || reps > 100) throw cli::UsageError("--reps must be 1 .. 100");
    if (mb < 64) throw cli::UsageError("--mb must be >= 64");
    const MoeSettings moe = cli::moe_settings_from(args);
    const long long devices = args.get_int("virtual-devices", 0);
    if (devices < 0 || devices > 4096) throw cli::UsageError("--virtual-devices must be 0 .. 4096");

    const BenchModel bm = open_bench_model(args, static_cast<int>(prompt + gen + 1));
    const ModelConfig& c = bm.model->config();
    const ModelInfo& info = bm.model->info();
    Setup st{bm.model, step_cost(c, bytes_per_weight(info), bm.int8), static_cast<int>(prompt), static_cast<int>(gen),
             static_cast<int>(shared), moe, static_cast<int>(devices)};
    cli::check_moe_flags(c, moe);

    CpuProbe probe(bm.model->threads());
    const std::size_t probe_bytes = static_cast<std::size_t>(mb) << 20;
    if (!bm.on_gpu) probe.read_pass(probe_bytes);  // faults the probe's buffer in

    std::mt19937 rng(17);
    std::map<int, std::vector<BatchRun>> runs;
    for (long long rep = 0; rep < reps; ++rep)
        for (int n : sizes) runs[n].push_back(run_batch(st, n, rng, probe, probe_bytes, bm.on_gpu));

    // Summed tokens/s of n sequences over that of one, per repetition.
    const auto tps = [](const BatchRun& r) { return r.decode_rows / r.decode_seconds; };
    nlohmann::json batches = nlohmann::json::array();
    struct Row {
        int n;
        Summary summed, per_seq, limit, frac, union_b, bw, prefill, prefill_unshared, ratio;
        double cache, rss;
        int reused;
    };
    std::vector<Row> table;
    for (int n : sizes) {
        const auto& rs = runs[n];
        std::vector<double> summed, per, limit, frac, ub, bw, pre, pre_u, ratio;
        for (std::size_t i = 0; i < rs.size(); ++i) {
            const BatchRun& r = rs[i];
            summed.push_back(tps(r));
            per.push_back(tps(r) / n);
            ub.push_back(r.union_bytes / std::max(1, r.decode_steps));
            pre.push_back(r.prefill_seconds);
            pre_u.push_back(r.prefill_unshared_seconds);
            if (r.bandwidth_gbs > 0) {
                bw.push_back(r.bandwidth_gbs);
                const double lim = r.decode_rows / (r.union_bytes / (r.bandwidth_gbs * 1e9));
                limit.push_back(lim);
                frac.push_back(tps(r) / lim);
            }
            if (runs.count(1)) ratio.push_back(tps(r) / tps(runs[1][i]));
        }
        Row row{n, summarize(summed), summarize(per), summarize(limit), summarize(frac), summarize(ub), summarize(bw),
                summarize(pre), summarize(pre_u), summarize(ratio), 0.0, peak_rss_bytes(), rs.back().reused_tokens};
        for (const BatchRun& r : rs) row.cache = std::max(row.cache, static_cast<double>(r.cache_bytes));
        table.push_back(row);
        nlohmann::json j = {
            {"sequences", n},
            {"summed_tokens_per_s", row.summed.median},
            {"per_sequence_tokens_per_s", row.per_seq.median},
            {"union_bytes_per_step", row.union_b.median},
            {"bandwidth_limit_tokens_per_s", row.limit.median},
            {"fraction_of_bandwidth_limit", summary_json(row.frac)},
            {"summed_tokens_per_s_by_repetition", summary_json(row.summed)},
            {"read_gb_per_s", summary_json(row.bw)},
            {"prefill_seconds", row.prefill.median},
            {"cache_bytes", row.cache},
            {"peak_rss_bytes", row.rss},
        };
        if (runs.count(1)) j["summed_over_one_sequence"] = summary_json(row.ratio);
        if (devices > 0) {
            // Per computed token (prompt and generated), medians over the repetitions.
            std::vector<double> db, cb, dms, cms, touched, imb;
            for (const BatchRun& r : rs) {
                const double t = static_cast<double>(std::max(1LL, r.tokens_computed));
                db.push_back(static_cast<double>(r.traffic.dispatch_bytes()) / t);
                cb.push_back(static_cast<double>(r.traffic.combine_bytes()) / t);
                dms.push_back(1e3 * r.traffic.dispatch_seconds / t);
                cms.push_back(1e3 * r.traffic.combine_seconds / t);
                touched.push_back(r.traffic.mean_devices_touched());
                imb.push_back(r.traffic.imbalance());
            }
            j["expert_parallel"] = {{"dispatch_bytes_per_token", summarize(db).median},
                                    {"combine_bytes_per_token", summarize(cb).median},
                                    {"dispatch_ms_per_token", summarize(dms).median},
                                    {"combine_ms_per_token", summarize(cms).median},
                                    {"devices_per_token_layer", summarize(touched).median},
                                    {"expert_imbalance", summarize(imb).median}};
        }
        if (shared > 0) {
            j["prefill_seconds_unshared"] = row.prefill_unshared.median;
            j["prefill_seconds_saved_by_sharing"] = row.prefill_unshared.median - row.prefill.median;
            j["prompt_tokens_reused"] = row.reused;
        }
        batches.push_back(j);
    }
    if (args.flag("json")) {
        const nlohmann::json j = {{"model", bm.label},
                                  {"device", bm.options.device},
                                  {"threads", bm.model->threads()},
                                  {"kernels", cpu_kernel_level()},
                                  {"prompt_tokens", prompt},
                                  {"gen_tokens", gen},
                                  {"shared_prefix_tokens", shared},
                                  {"experts_per_token", effective_experts_per_token(c, moe)},
                                  {"device_limit", effective_device_limit(c, moe)},
                                  {"disabled_experts", format_disabled_experts(moe.disabled)},
                                  {"active_parameters_per_token", active_parameters(info, moe)},
                                  {"virtual_devices", devices},
                                  {"repetitions", reps},
                                  {"fixed_bytes_per_step", st.cost.fixed},
                                  {"bytes_per_routed_expert", st.cost.expert},
                                  {"batches", batches}};
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("model    %s, %u threads, kernels %s\n", bm.label.c_str(), bm.model->threads(), cpu_kernel_level().c_str());
    std::printf("routing  %s, %.2f M active parameters per token\n", cli::routing_summary(c, moe).c_str(), static_cast<double>(active_parameters(info, moe)) / 1e6);
    std::printf("per step %.1f MB read whatever the routing, + %.2f MB per distinct routed expert\n", st.cost.fixed / 1e6,
                st.cost.expert / 1e6);
    std::printf("prompts  %lld tokens%s, then %lld generated (greedy), %lld repetitions alternating the batch sizes\n",
                prompt, shared ? (" (the first " + std::to_string(shared) + " shared)").c_str() : "", gen, reps);
    std::printf("\n%5s %28s %12s %12s %14s %10s %9s %9s%s\n", "seqs", "summed tok/s", "per seq", "x one seq",
                "limit tok/s", "of limit", "MB/step", "cache MB", shared ? "  prefill s (unshared)" : "  prefill s");
    for (const Row& r : table) {
        char ratio[32] = "-";
        if (r.ratio.reps) std::snprintf(ratio, sizeof ratio, "%.2fx", r.ratio.median);
        std::printf("%5d %28s %12.2f %12s %14.2f %9.1f%% %9.1f %9.1f", r.n, format_summary(r.summed, 2).c_str(),
                    r.per_seq.median, ratio, r.limit.median, 100.0 * r.frac.median, r.union_b.median / 1e6, r.cache / 1e6);
        if (shared)
            std::printf("  %.3f (%.3f)\n", r.prefill.median, r.prefill_unshared.median);
        else
            std::printf("  %.3f\n", r.prefill.median);
    }
    std::printf("\ndecode ms per step by stage (median of the repetitions):\n%5s %10s %8s %8s %8s %8s %8s %8s %8s\n", "seqs",
                "attention", "router", "shared", "routed", "dense", "lm_head", "rest", "step");
    for (int n : sizes) {
        std::vector<double> v[8];
        for (const BatchRun& r : runs[n]) {
            const StageTimes& d = r.decode_stages;
            const double k = 1e3 / std::max(1, r.decode_steps);
            const double parts[] = {d.attention, d.router, d.shared_experts, d.routed_experts, d.dense_ffn, d.lm_head};
            double sum = 0.0;
            for (int i = 0; i < 6; ++i) {
                v[i].push_back(k * parts[i]);
                sum += parts[i];
            }
            v[6].push_back(k * (r.decode_seconds - sum));
            v[7].push_back(k * r.decode_seconds);
        }
        std::printf("%5d", n);
        for (int i = 0; i < 8; ++i) std::printf(" %*.2f", i == 0 ? 10 : 8, summarize(v[i]).median);
        std::printf("\n");
    }
    if (devices > 0) {
        std::printf("\nexperts on %lld virtual devices, per computed token (prompt and generated; median of the repetitions):\n"
                    "%5s %14s %14s %12s %12s %14s %10s\n", devices, "seqs", "dispatch B", "combine B", "dispatch ms",
                    "combine ms", "devices/layer", "imbalance");
        for (const auto& j : batches) {
            const auto& e = j["expert_parallel"];
            std::printf("%5d %14.0f %14.0f %12.4f %12.4f %14.2f %10.2f\n", j["sequences"].get<int>(),
                        e["dispatch_bytes_per_token"].get<double>(), e["combine_bytes_per_token"].get<double>(),
                        e["dispatch_ms_per_token"].get<double>(), e["combine_ms_per_token"].get<double>(),
                        e["devices_per_token_layer"].get<double>(), e["expert_imbalance"].get<double>());
        }
    }
    std::printf("\npeak RSS %.2f GB; read bandwidth probed around each run; median (min-max, n=repetitions)\n",
                table.back().rss / 1e9);
    return 0;
}

}  // namespace

const Command kBatchCommand{
    "batch",
    "(--synthetic v2-lite [--layers N] | --model DIR) [--dtype bf16|f16|f32|int8] [--sequences 1,2,4,8,16] "
    "[--prompt P] [--gen G] [--shared-prefix N] [--reps R] [--mb N] [--threads T] [--cache DIR] [--json] "
    "[--device cpu|cuda[:N]] [--weights-memory auto|resident|mapped] [--experts-per-token K] [--device-limit M] "
    "[--disable-experts L:E,...] [--virtual-devices D]",
    "summed decode tokens/s of many sequences in one step, against the batched bandwidth limit", run_batch_command};

}  // namespace moelens::bench
