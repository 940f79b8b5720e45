#pragma once
// Many sequences over one Model, stepped together (continuous batching). Each
// step takes a ragged batch: one row for every decoding sequence and chunks of
// the prompts still being read, under a token budget. Sequences join and leave
// between steps; each has its own sampler, seed, stop rules, token budget and
// events. Their latent caches live in one paged pool; sequences that start with
// the same tokens share those blocks and the shared part is computed once.
//
// Drive a Scheduler from one thread (callbacks run on it). Session is the
// one-sequence case of it.
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "moelens/expert_parallel.h"
#include "moelens/generation.h"
#include "moelens/model.h"
#include "moelens/moe_settings.h"
#include "moelens/sampling.h"

namespace moelens {

struct SchedulerOptions {
    int step_tokens = 256;      // most rows per step (prompt chunks and decode rows together)
    int cache_blocks = 0;       // most blocks of the latent pool; 0 = as many as memory allows
    bool share_prefixes = true; // new sequences reuse the blocks of an existing one's equal prefix
    // Routed experts spread over this many virtual devices (moelens/expert_parallel.h),
    // the traffic counted in expert_traffic(); 0 = one device, nothing counted. CPU models.
    int virtual_devices = 0;
    // Memory of each virtual device in bytes: its weights (ExpertPlacement::weight_bytes)
    // plus a step's activations there must fit, or that step fails as out of memory
    // (DeviceFault). 0 = no limit. Weights that do not fit at all are refused here.
    std::uint64_t virtual_device_memory = 0;
};

using SequenceId = std::uint64_t;

// A generation: feed `prompt` after what the sequence holds, then sample until a
// stop rule. Callbacks run on the thread calling Scheduler::step().
struct GenerationRequest {
    std::vector<int> prompt;
    SamplingParams sampling;
    AttentionPath attention = AttentionPath::absorbed;  // for a new sequence (submit)
    int max_tokens = 0;                       // context limit of a new sequence; 0 = the model's
    MoeSettings moe;                          // routing of a new sequence (submit); checked there
    const std::atomic<bool>* cancel = nullptr;  // checked before every token of this sequence
    EventSink on_event;                       // every prompt and generated token; false stops this sequence
    GenerateHooks hooks;
    std::function<void(SequenceId, const GenerationResult&)> on_finish;
};

// The pool as it is.
struct PoolStats {
    int block_tokens = 0;
    std::uint64_t block_bytes = 0;
    int blocks_used = 0;
    int blocks_shared = 0;  // held by more than one sequence
    int blocks_free = 0;    // allocated, free for reuse
    int max_blocks = 0;     // 0 = no limit
    std::uint64_t bytes_allocated = 0;
};

class SchedulerImpl;

class Scheduler {
public:
    explicit Scheduler(std::shared_ptr<const Model> model, SchedulerOptions options = {});
    ~Scheduler();
    Scheduler(Scheduler&&) noexcept;
    Scheduler& operator=(Scheduler&&) noexcept;

    // A new sequence running `request`; it is closed (its blocks released) when
    // it finishes. Throws Error for token ids outside the vocabulary.
    SequenceId submit(GenerationRequest request);
    // Sequences kept across generations (a chat, a Session): open, then
    // generate() or feed() as often as needed, close when done.
    // Throws Error for MoE settings the model cannot take (check_moe_settings).
    SequenceId open(AttentionPath attention = AttentionPath::absorbed, int max_tokens = 0, MoeSettings moe = {});
    void generate(SequenceId id, GenerationRequest request);
    void close(SequenceId id);

    // Feeds tokens to an open, idle sequence now, alone, in steps of at most
    // step_tokens (events per token; is_prompt as given). Stops between steps
    // when `cancel` becomes true. Returns how many were fed. Throws Error for bad
    // ids, a full context or a full pool.
    int feed(SequenceId id, std::span<const int> tokens, const EventSink& on_event = {}, bool is_prompt = true,
             const std::atomic<bool>* cancel = nullptr);
    // Drops everything past the first `tokens` positions of an idle sequence.
    void rewind(SequenceId id, int tokens);
    // The attention path of an open sequence's next tokens (the naive path is
    // refused, with an Error, where the backend has none, as on a GPU).
    void set_attention(SequenceId id, AttentionPath path);
    AttentionPath attention(SequenceId id) const;
    int max_tokens(SequenceId id) const;

    // Stops one sequence's generation before its next token; the others go on.
    void cancel(SequenceId id);
    // One step over every running generation. Returns false when none is running.
    bool step();
    // Steps until no generation runs, or `stop` becomes true (then every
    // running generation ends as cancelled).
    void run(const std::atomic<bool>* stop = nullptr);
    int running() const;

    const std::vector<int>& tokens(SequenceId id) const;
    std::span<const float> logits(SequenceId id) const;  // of its last fed token; empty if none
    CacheStats cache_stats(SequenceId id) const;
    PoolStats pool_stats() const;
    const StageTimes& stage_times() const;
    void reset_stage_times();
    int last_step_rows() const;  // rows of the most recent step
    // With virtual devices: where the experts are, and what moving rows to them cost.
    const ExpertPlacement* placement() const;  // null without virtual devices
    const ExpertTraffic& expert_traffic() const;
    void reset_expert_traffic();
    // One sequence's traffic: of its current generation, or its last one (reset
    // when a generation begins; feed() adds to it). Null without virtual devices.
    const ExpertTraffic* expert_traffic(SequenceId id) const;
    // Takes virtual device `device` offline, as a GPU lost mid-run: every later
    // step with a row routed to one of its experts fails (DeviceFault), ending the
    // generations in it. It stays lost for this scheduler's life.
    void lose_device(int device);
    const Model& model() const;

private:
    std::unique_ptr<SchedulerImpl> m_impl;
};

}  // namespace moelens
