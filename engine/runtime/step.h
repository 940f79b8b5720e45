#pragma once
// One forward step over a ragged batch: any number of sequences, each feeding one
// token (decoding) or a chunk of its prompt, at its own next positions. Decode and
// prefill are this same walk; the one-row case only picks the backend's one-row
// operations. runtime/step.cpp is the only layer walk on the CPU.
#include <span>
#include <vector>

#include "runtime/model_impl.h"
#include "moelens/events.h"
#include "moelens/expert_parallel.h"
#include "moelens/generation.h"
#include "runtime/latent_pool.h"
#include "runtime/sequence.h"

namespace moelens {

// One sequence's part of a step: `tokens` at positions seq->position() onwards.
struct StepItem {
    SequenceState* seq = nullptr;
    std::span<const int> tokens;
    bool logits = false;  // leave its last row's logits in seq->logits
};

// The step's activations, one row per fed token, grown to the largest step and
// then reused (decoding allocates nothing).
struct StepWorkspace {
    int rows = 0;
    int n_moe = 0;  // MoE layers
    int top_k = 0;  // routing slots per row: the largest k among the step's sequences
    std::vector<float> x, xn, q, q_a, kv_a, q_pe, q_lat, out_lat, attn_o, out;
    std::vector<float> gate, up, probs, head_in, head_out;
    std::vector<float> xe, ye, expert_scratch;  // [rows * top_k, ...] the rows gathered by routed expert
    std::vector<FfnGroup> groups;               // the experts some row chose, with their rows
    std::vector<float> ffn_scratch, route_scratch, scores, kv_naive, rope_cos, rope_sin;
    std::vector<FfnTerm> ffn_terms;
    std::vector<int> positions;             // [rows]
    std::vector<LatentCacheView> views;     // [rows] the cache each row attends over (this layer)
    std::vector<SequenceState*> row_seq;    // [rows] the sequence of each row (its routing, home device, traffic)
    // Expert parallelism over virtual devices (moelens/expert_parallel.h): set by
    // the scheduler, null for one device.
    const ExpertPlacement* placement = nullptr;
    ExpertTraffic* traffic = nullptr;
    std::uint64_t device_memory = 0;        // bytes per virtual device; 0 = no limit
    std::vector<char> device_lost;          // [devices] taken offline (Scheduler::lose_device)
    std::vector<std::uint64_t> device_slots;  // [devices] scratch: this layer's (row, expert) products there
    std::vector<int> group_expert;          // [groups] the expert of each group
    std::vector<FfnGroup> device_groups;    // one device's groups
    std::vector<char> touched;              // [devices] scratch: devices one token-layer reaches
    std::vector<int> expert_rows, expert_begin;
    std::vector<float> expert_weight;
    std::vector<int> route_ids;             // [rows, n_moe, top_k]
    std::vector<float> route_weights;       // [rows, n_moe, top_k]
    StageTimes times;                       // summed over every step run with this workspace

    // The routing of row r into e.routing (sized by init_event for its sequence's k).
    void fill_routing(const ModelImpl& m, int r, TokenEvent& e) const;
    static void init_event(const ModelImpl& m, int top_k, TokenEvent& e);
};

// Runs the step: appends every item's tokens to its sequence, writes their latent
// rows into the pool (the caller has made them writable with
// LatentPool::prepare_write) and leaves the routing of row r (rows in item
// order) in w.route_ids / w.route_weights. Token ids must have been checked.
void run_step(const ModelImpl& m, LatentPool& pool, StepWorkspace& w, std::span<const StepItem> items);

// The same step on the GPU (runtime/device_step.cpp): each item is one call of
// the plugin on its sequence's device cache.
void run_device_step(const ModelImpl& m, StepWorkspace& w, std::span<const StepItem> items);

}  // namespace moelens
