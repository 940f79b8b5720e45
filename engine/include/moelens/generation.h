#pragma once
// The values of running a model that Session and Scheduler share: attention
// path, event sinks, stop reasons, results and stage timings.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "moelens/events.h"
#include "moelens/expert_traffic.h"

namespace moelens {

enum class AttentionPath {
    absorbed,  // default: W_UK folded into the query, W_UV into the output; attends over the latents directly
    naive,     // decompresses the cached latents into per-head keys and values (reference path)
};

// Called for every prefilled or generated token; return false to stop generate().
// The event is valid for the duration of the call only (copy what you keep).
using EventSink = std::function<bool(const TokenEvent&)>;

// Wall time of each part of the forward step, summed over every step a Session
// (since it was created or reset) or a Scheduler ran (moelens-bench prints the split). Reading the
// clock costs tens of nanoseconds per part, so it is always on.
struct StageTimes {
    double attention = 0.0;       // q / kv projections, RoPE, attention over the cache, o_proj
    double router = 0.0;          // gate, softmax, top-k
    double shared_experts = 0.0;  // steps of several rows; a one-row step (one sequence decoding) runs
                                  // shared and routed experts as one weighted sum, timed in routed_experts
    double routed_experts = 0.0;  // the top-k experts, weighted (one-row steps: with the shared experts)
    double dense_ffn = 0.0;       // the dense layers' FFN
    double lm_head = 0.0;         // final norm and output projection
    double total = 0.0;           // whole forward steps (the rest: embedding, norms, residual adds)
    int tokens = 0;               // rows fed
};

enum class StopReason {
    max_new_tokens, eos, stop_token, stop_string, cancelled, callback, context_full,
    error,  // the sequence could not go on (GenerationResult::error says why, e.g. the cache pool is full)
};

const char* stop_reason_name(StopReason reason);

struct GenerationResult {
    std::vector<int> tokens;  // generated tokens (the stop token, if any, included)
    StopReason reason = StopReason::max_new_tokens;
    int prompt_tokens = 0;
    double prefill_seconds = 0.0;
    double decode_seconds = 0.0;
    int reused_tokens = 0;    // prompt tokens whose cache rows were shared with another sequence, not computed
    std::string error;        // with StopReason::error
    int failed_device = -1;   // with StopReason::error: the device that failed (DeviceFault), else -1
    // With virtual devices: what this generation's rows moved (its prompt and its tokens).
    std::optional<ExpertTraffic> traffic;
};

// Optional hooks for generate(): token_text turns one token id into its text so
// stop strings can be detected (the tokenizer lives outside the session);
// on_token is called with each generated token id before its event.
struct GenerateHooks {
    std::function<std::string(int token)> token_text;
    std::function<void(int token)> on_token;
};

}  // namespace moelens
