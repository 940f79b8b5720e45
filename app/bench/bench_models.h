#pragma once
// Shared by the model benchmarks (model, batch): opening the model a run names
// (a synthetic checkpoint written once into a cache folder, or a real one), and
// the weight bytes a step reads, which the bandwidth limits are computed from.
#include <chrono>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "args.h"
#include "moelens/model.h"

namespace moelens::bench {

using Clock = std::chrono::steady_clock;
inline double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The options open_bench_model reads (add the command's own to these).
std::set<std::string> model_options();

struct BenchModel {
    std::shared_ptr<const Model> model;
    std::string label;        // "synthetic v2-lite, 6 layers, bf16"
    bool int8 = false;
    bool on_gpu = false;      // CPU limits do not apply
    LoadOptions options;
    double load_seconds = 0.0;
};

// --synthetic PRESET [--layers N] | --model DIR, --dtype, --cache, --threads and
// the device options. `context`: the positions a GPU run must hold.
BenchModel open_bench_model(const cli::Args& args, int context);

// Weights a decode step reads and multiply-adds it does, per token.
struct TokenCost {
    double active_bytes = 0.0;   // attention + dense FFN or (router + shared + top-k experts) + one embedding row + lm_head
    double flops = 0.0;          // 2 per multiply-add of every matrix product of one decoded token (lm_head included)
    double prefill_flops = 0.0;  // the same for a prompt token: prefill computes logits for the last token only
};

// The weight bytes of a step split by what decides them: `fixed` is read once
// per step whatever the routing (attention, dense FFN, routers, shared experts,
// lm_head); each distinct routed expert any row chose adds `expert`.
struct StepCost {
    double fixed = 0.0;
    double expert = 0.0;
    double embedding_row = 0.0;  // per row
};

// bytes_per_weight: of the stored dtype; int8: the q8 copies hold 1 + 4/64 bytes
// per weight, and kv_b_proj, the router and the embedding stay as stored (see
// moelens/model.h WeightsFormat).
StepCost step_cost(const ModelConfig& c, double bytes_per_weight, bool int8);
TokenCost token_cost(const ModelConfig& c, double bytes_per_weight, bool int8);
double bytes_per_weight(const ModelInfo& info);

std::vector<int> random_tokens(int n, int vocab, std::mt19937& rng);
double peak_rss_bytes();

}  // namespace moelens::bench
