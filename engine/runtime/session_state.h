#pragma once
// Everything one sequence owns: its tokens, its latent cache and every scratch
// buffer of the forward step, sized once from the config so that decoding
// allocates nothing (except when the cache doubles its capacity).
#include <vector>

#include "backend/device_model.h"
#include "model/model_impl.h"
#include "moelens/events.h"
#include "moelens/session.h"
#include "runtime/latent_cache.h"

namespace moelens {

class SessionState {
public:
    SessionState(const ModelImpl& m, int max_tokens);

    // Grows the context-sized buffers (cache, scores, naive kv) to hold `tokens`.
    void ensure_capacity(int tokens, bool naive);

    std::vector<int> tokens;     // fed so far; position of the next token = tokens.size()
    LatentCache cache;
    std::vector<float> x;        // [hidden] residual stream
    std::vector<float> xn;       // [hidden] normalised input of a sub-block
    std::vector<float> q;        // [H, dn + dr]
    std::vector<float> q_a;      // [q_lora] compressed query (q_lora_rank > 0)
    std::vector<float> kv_a;     // [kv_lora + dr] c_kv then k_pe before norm / rope
    std::vector<float> q_lat;    // [H, kv_lora] absorbed query W_UK^T q_nope
    std::vector<float> q_pe;     // [H, dr] roped query part, contiguous
    std::vector<float> out_lat;  // [H, kv_lora] attention output in latent space
    std::vector<float> attn_o;   // [H, dv] per-head values, before o_proj
    std::vector<float> attn_out; // [hidden]
    std::vector<float> scores;   // [H, capacity]
    std::vector<float> kv_naive; // [capacity, H*(dn+dv)] decompressed keys/values (naive path only)
    std::vector<float> ffn_scratch; // [2 * max(dense width, shared + top_k routed widths) + hidden] (Backend::ffn_sum)
    std::vector<FfnTerm> ffn_terms; // [1 + top_k] the shared and routed experts of a token
    std::vector<float> ffn_out;  // [hidden]
    std::vector<float> gate_probs;   // [n_routed]
    std::vector<float> route_scratch;// [n_routed + n_group]
    std::vector<int> route_ids;      // [top_k]
    std::vector<float> route_weights;// [top_k]
    std::vector<float> rope_cos;     // [dr/2] for the current position
    std::vector<float> rope_sin;     // [dr/2]
    std::vector<float> logits;       // [vocab]
    bool has_logits = false;
    int n_heads = 0;
    int kv_stride = 0;               // H*(dn+dv), one naive kv row
    TokenEvent event;                // reused per token; routing sized once
    StageTimes stage_times;          // summed per part of the forward step
    std::unique_ptr<DeviceSequence> device;  // this sequence on the GPU when the model is there
};

}  // namespace moelens
