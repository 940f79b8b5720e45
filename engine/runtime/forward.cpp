// One DeepSeek-V2 decoder step (arXiv 2405.04434, section 2), written once against
// the backend interface. Notation of the paper: h_t the hidden state, c_t^{KV} the
// compressed latent, k_t^R the decoupled RoPE key, W^{UK}/W^{UV} the up-projections
// (rows of kv_b_proj), W^O the output projection.
#include "runtime/forward.h"

#include <algorithm>
#include <cstring>

#include "backend/device_step.h"
#include "runtime/stage_clock.h"

namespace moelens {
namespace {

// SiLU-gated FFN: out[hidden] = W_down (silu(W_gate x) * (W_up x)).
void ffn(Backend& be, const FfnWeights& f, const float* x, SessionState& s, float* out)
{
    const FfnTerm term{&f.gate, &f.up, &f.down, 1.0f};
    be.ffn_sum(&term, 1, x, out, s.ffn_scratch.data());
}

// Multi-head latent attention for the token at `pos`; reads s.xn, writes s.attn_out.
void attention(const ModelImpl& m, SessionState& s, int layer, int pos, AttentionPath path)
{
    const StageClock clock(s.stage_times.attention);
    Backend& be = *m.backend;
    const ModelConfig& c = m.config;
    const LayerWeights& L = m.weights.layers[layer];
    const MlaDims& d = m.mla;
    const int H = d.n_heads, dn = d.dn, dr = d.dr, dv = d.dv, dc = d.kv_lora;
    const float eps = static_cast<float>(c.rms_norm_eps);

    // Query [H, dn + dr]: q = W^Q h, or with query compression q = W^{UQ} RMSNorm(W^{DQ} h).
    // [c^{KV} ; k^R] = W^{DKV} h   [kv_lora + dr], in the same call (same input h).
    const bool q_lora = L.q_proj.empty();
    const WeightView* first[2] = {q_lora ? &L.q_a_proj : &L.q_proj, &L.kv_a_proj};
    float* first_out[2] = {q_lora ? s.q_a.data() : s.q.data(), s.kv_a.data()};
    be.matvec_multi(first, first_out, 2, s.xn.data());
    if (q_lora) {
        be.rmsnorm(s.q_a.data(), L.q_a_norm.data(), c.q_lora_rank, eps, s.q_a.data());
        be.matvec(L.q_b_proj, s.q_a.data(), s.q.data());
    }

    // The cache row keeps RMSNorm(c^{KV}) and RoPE(k^R): the only per-token state MLA needs.
    float* row = s.cache.row(layer, pos);
    be.rmsnorm(s.kv_a.data(), L.kv_a_norm.data(), dc, eps, row);
    std::memcpy(row + dc, s.kv_a.data() + dc, sizeof(float) * dr);
    be.rope(row + dc, 1, dr, dr, s.rope_cos.data(), s.rope_sin.data());
    // q^R: the last dr of each head, rotated in place.
    be.rope(s.q.data() + dn, H, dn + dr, dr, s.rope_cos.data(), s.rope_sin.data());

    const LatentCacheView cache = s.cache.view(layer, pos + 1);
    if (path == AttentionPath::absorbed) {
        // Absorb W^{UK} into the query: q_nope_h . (W^{UK}_h c) = (W^{UK}_h^T q_nope_h) . c,
        // so scores are taken against the latents directly.
        be.absorb_query(L.kv_b_proj, s.q.data(), H, dn + dr, dn, dv, s.q_lat.data());
        for (int h = 0; h < H; ++h)
            std::memcpy(s.q_pe.data() + static_cast<std::size_t>(h) * dr, s.q.data() + static_cast<std::size_t>(h) * (dn + dr) + dn,
                        sizeof(float) * dr);
        be.attention_mla_absorbed(s.q_lat.data(), s.q_pe.data(), cache, d, s.scores.data(), s.out_lat.data());
        // Absorb W^{UV} into the output: sum_s p_s (W^{UV}_h c_s) = W^{UV}_h (sum_s p_s c_s).
        be.absorb_output(L.kv_b_proj, s.out_lat.data(), H, dn, dv, s.attn_o.data());
    } else {
        // Decompress every cached latent into per-head k^C and v: [k_nope_h ; v_h] = W^{UKV}_h c_s.
        const std::size_t kv_stride = static_cast<std::size_t>(H) * (dn + dv);
        for (int t = 0; t <= pos; ++t) be.matvec(L.kv_b_proj, s.cache.row(layer, t), s.kv_naive.data() + t * kv_stride);
        be.attention_mla_naive(s.q.data(), s.kv_naive.data(), cache, d, s.scores.data(), s.attn_o.data());
    }
    // u = W^O [o_1; ...; o_H]
    be.matvec(L.o_proj, s.attn_o.data(), s.attn_out.data());
}

// DeepSeekMoE: shared experts always, plus the top-k routed experts weighted by
// their gate scores. Reads s.xn, writes s.ffn_out; records the routing.
void moe(const ModelImpl& m, SessionState& s, int layer, RoutingRecord* record)
{
    Backend& be = *m.backend;
    const LayerWeights& L = m.weights.layers[layer];
    const RouteParams& rp = m.route;

    // s_i = Softmax_i(u^T e_i) over the routed experts.
    {
        const StageClock clock(s.stage_times.router);
        be.matvec(L.gate, s.xn.data(), s.gate_probs.data());
        be.softmax(s.gate_probs.data(), rp.n_experts);
        be.moe_route(s.gate_probs.data(), rp, s.route_ids.data(), s.route_weights.data(), s.route_scratch.data());
    }
    // Shared and routed experts as one weighted sum (two jobs on the CPU), timed
    // together in routed_experts.
    {
        const StageClock clock(s.stage_times.routed_experts);
        int n = 0;
        if (!L.shared.gate.empty()) s.ffn_terms[n++] = {&L.shared.gate, &L.shared.up, &L.shared.down, 1.0f};
        for (int j = 0; j < rp.top_k; ++j) {
            const FfnWeights& e = L.experts[s.route_ids[j]];
            s.ffn_terms[n++] = {&e.gate, &e.up, &e.down, s.route_weights[j]};
        }
        be.ffn_sum(s.ffn_terms.data(), n, s.xn.data(), s.ffn_out.data(), s.ffn_scratch.data());
    }
    if (record) {
        const int per_group = rp.n_experts / std::max(1, rp.n_group);
        record->layer = layer;
        for (int j = 0; j < rp.top_k; ++j) {
            record->experts[j] = s.route_ids[j];
            record->weights[j] = s.route_weights[j];
            record->groups[j] = s.route_ids[j] / per_group;
        }
    }
}

}  // namespace

void forward_step(const ModelImpl& m, SessionState& s, int token, AttentionPath path, TokenEvent* event)
{
    if (m.device) return device_forward_step(m, s, token, event);  // the whole step on the GPU
    const StageClock clock(s.stage_times.total);
    ++s.stage_times.tokens;
    Backend& be = *m.backend;
    const ModelConfig& c = m.config;
    const ModelWeights& w = m.weights;
    const int hidden = c.hidden_size;
    const float eps = static_cast<float>(c.rms_norm_eps);
    const int pos = static_cast<int>(s.tokens.size());
    s.ensure_capacity(pos + 1, path == AttentionPath::naive);
    rope_cos_sin(m.rope, pos, s.rope_cos.data(), s.rope_sin.data());

    be.embedding(w.embed, token, s.x.data());
    int moe_index = 0;
    for (int l = 0; l < c.num_hidden_layers; ++l) {
        const LayerWeights& L = w.layers[l];
        // h += MLA(RMSNorm(h))
        be.rmsnorm(s.x.data(), L.input_norm.data(), hidden, eps, s.xn.data());
        attention(m, s, l, pos, path);
        be.axpy(s.x.data(), 1.0f, s.attn_out.data(), hidden);
        // h += FFN(RMSNorm(h)), dense for the first layers, DeepSeekMoE after
        be.rmsnorm(s.x.data(), L.post_attention_norm.data(), hidden, eps, s.xn.data());
        if (L.moe) {
            moe(m, s, l, event ? &event->routing[moe_index++] : nullptr);
        } else {
            const StageClock clock(s.stage_times.dense_ffn);
            ffn(be, L.mlp, s.xn.data(), s, s.ffn_out.data());
        }
        be.axpy(s.x.data(), 1.0f, s.ffn_out.data(), hidden);
    }
    {
        const StageClock clock(s.stage_times.lm_head);
        be.rmsnorm(s.x.data(), w.final_norm.data(), hidden, eps, s.xn.data());
        be.matvec(w.lm_head, s.xn.data(), s.logits.data());
    }
    s.tokens.push_back(token);
    s.has_logits = true;
    if (event) {
        event->token = token;
        event->position = pos;
        event->cache = s.cache.stats(pos + 1);
    }
}

}  // namespace moelens
