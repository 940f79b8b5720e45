#pragma once
// Running a model: a Session is one sequence with its own latent cache and
// scratch. Drive it from one thread at a time (e.g. a worker thread); several
// sessions may share one Model from different threads. The engine never calls
// into Qt: callbacks run on the calling thread.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "moelens/events.h"
#include "moelens/model.h"
#include "moelens/sampling.h"

namespace moelens {

enum class AttentionPath {
    absorbed,  // default: W_UK folded into the query, W_UV into the output; attends over the latents directly
    naive,     // decompresses the cached latents into per-head keys and values (reference path)
};

struct SessionOptions {
    AttentionPath attention = AttentionPath::absorbed;
    int max_tokens = 0;  // context limit; 0 = max_position_embeddings of the model
};

// Called for every prefilled or generated token; return false to stop generate().
// The event is valid for the duration of the call only (copy what you keep).
using EventSink = std::function<bool(const TokenEvent&)>;

// Wall time of each part of the forward step, summed over every token fed since
// the session was created or reset (moelens-bench prints the split). Reading the
// clock costs tens of nanoseconds per part, so it is always on.
struct StageTimes {
    double attention = 0.0;       // q / kv projections, RoPE, attention over the cache, o_proj
    double router = 0.0;          // gate, softmax, top-k
    double shared_experts = 0.0;  // prefill only: a decoded token runs shared and routed experts
                                  // as one weighted sum, timed in routed_experts
    double routed_experts = 0.0;  // the top-k experts, weighted (decode: with the shared experts)
    double dense_ffn = 0.0;       // the dense layers' FFN
    double lm_head = 0.0;         // final norm and output projection
    double total = 0.0;           // whole forward steps (the rest: embedding, norms, residual adds)
    int tokens = 0;
};

enum class StopReason { max_new_tokens, eos, stop_token, stop_string, cancelled, callback, context_full };

const char* stop_reason_name(StopReason reason);

struct GenerationResult {
    std::vector<int> tokens;  // generated tokens (the stop token, if any, included)
    StopReason reason = StopReason::max_new_tokens;
    int prompt_tokens = 0;
    double prefill_seconds = 0.0;
    double decode_seconds = 0.0;
};

// Optional hooks for generate(): token_text turns one token id into its text so
// stop strings can be detected (the tokenizer lives outside the session);
// on_token is called with each generated token id before its event.
struct GenerateHooks {
    std::function<std::string(int token)> token_text;
    std::function<void(int token)> on_token;
};

class SessionState;

class Session {
public:
    explicit Session(std::shared_ptr<const Model> model, SessionOptions options = {});
    ~Session();
    Session(Session&&) noexcept;
    Session& operator=(Session&&) noexcept;

    // Feeds tokens at the next positions, emitting one event each (is_prompt = true).
    // Returns the logits after the last one. Stops early (returning the logits so
    // far) when `cancel` becomes true; then tokens().size() tells how far it got.
    std::span<const float> prefill(std::span<const int> tokens, const EventSink& on_event = {},
                                   const std::atomic<bool>* cancel = nullptr);
    // Feeds one token at the next position; returns its logits [vocab].
    std::span<const float> step(int token, const EventSink& on_event = {}, bool is_prompt = false);
    // Logits of the last fed token (empty before any).
    std::span<const float> logits() const;

    // Prefill `prompt`, then sample until a stop condition. Checks `cancel` once
    // per token, so another thread stops it within one token.
    GenerationResult generate(std::span<const int> prompt, const SamplingParams& params, const EventSink& on_event = {},
                              const std::atomic<bool>* cancel = nullptr, const GenerateHooks& hooks = {});

    void reset();  // empties the cache; keeps its memory
    const std::vector<int>& tokens() const;  // everything fed so far
    int position() const;                   // = tokens().size()
    int max_tokens() const;
    CacheStats cache_stats() const;
    const StageTimes& stage_times() const;
    AttentionPath attention() const;
    void set_attention(AttentionPath path);
    const Model& model() const;

private:
    std::shared_ptr<const Model> m_model;
    std::unique_ptr<SessionState> m_state;
    AttentionPath m_attention = AttentionPath::absorbed;
};

// One forward step for a batch of sequences: sessions[i] is fed tokens[i] at its
// own next position, with its own cache; afterwards sessions[i]->logits() holds
// its logits. Events go to on_event with the batch index. (The first version runs
// the items one after the other.)
void forward_batch(std::span<Session* const> sessions, std::span<const int> tokens,
                   const std::function<bool(std::size_t index, const TokenEvent&)>& on_event = {});

}  // namespace moelens
