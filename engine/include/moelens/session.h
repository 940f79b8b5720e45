#pragma once
// Running a model: a Session is one sequence, the one-sequence case of a
// Scheduler (moelens/scheduler.h) with its own paged latent cache. Drive it from
// one thread at a time (e.g. a worker thread); several sessions may share one
// Model from different threads. The engine never calls into Qt: callbacks run on
// the calling thread.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "moelens/events.h"
#include "moelens/expert_parallel.h"
#include "moelens/generation.h"
#include "moelens/model.h"
#include "moelens/moe_settings.h"
#include "moelens/sampling.h"

namespace moelens {

struct SessionOptions {
    AttentionPath attention = AttentionPath::absorbed;
    int max_tokens = 0;  // context limit; 0 = max_position_embeddings of the model
    MoeSettings moe;     // the router's settings (moelens/moe_settings.h); default = the model's
    int virtual_devices = 0;  // experts spread over virtual devices (moelens/expert_parallel.h); 0 = one
    std::uint64_t virtual_device_memory = 0;  // bytes per virtual device (SchedulerOptions); 0 = no limit
};

class Scheduler;

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
    // Keeps the longest prefix of what was fed that equals the start of `tokens`
    // (at most tokens.size() - 1 of them, so the last one is fed again for its
    // logits) and drops the rest. Returns how many were kept: feed or generate
    // with tokens.subspan(kept) to continue a chat without reading it again.
    int keep_prefix(std::span<const int> tokens);
    const std::vector<int>& tokens() const;  // everything fed so far
    int position() const;                   // = tokens().size()
    int max_tokens() const;
    CacheStats cache_stats() const;
    const StageTimes& stage_times() const;
    const ExpertTraffic& expert_traffic() const;  // with virtual devices (SessionOptions)
    const ExpertTraffic* generation_traffic() const;  // of the current (or last) generation; null without them
    const ExpertPlacement* placement() const;         // null without virtual devices
    AttentionPath attention() const;
    void set_attention(AttentionPath path);
    const Model& model() const;

private:
    std::shared_ptr<const Model> m_model;
    std::unique_ptr<Scheduler> m_scheduler;
    std::uint64_t m_id = 0;
};

}  // namespace moelens
