// Batched prefill: the forward step of runtime/forward.cpp over many tokens at
// once (see prefill.h). Notation as there (DeepSeek-V2, arXiv 2405.04434, section 2).
#include "runtime/prefill.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/device_step.h"
#include "runtime/stage_clock.h"

namespace moelens {
namespace {

// The batch's activations, rows of one token each. Sized per call: prefill is
// not on the per-token decode path.
struct Batch {
    int n = 0;
    std::vector<float> x;      // [n, hidden] residual stream
    std::vector<float> xn;     // [n, hidden] normalised input of a sub-block
    std::vector<float> q;      // [n, H*(dn+dr)]
    std::vector<float> q_a;    // [n, q_lora]
    std::vector<float> kv_a;   // [n, kv_lora + dr]
    std::vector<float> q_pe;   // [n, H*dr] roped query parts, contiguous per token
    std::vector<float> q_lat;  // [n, H*kv_lora] absorbed queries
    std::vector<float> out_lat;// [n, H*kv_lora] attention outputs in latent space
    std::vector<float> attn_o; // [n, H*dv]
    std::vector<float> out;    // [n, hidden] sub-block output
    std::vector<float> gate;   // [n, width] FFN gate (then silu(gate) * up)
    std::vector<float> up;     // [n, width]
    std::vector<float> probs;  // [n, n_routed]
    std::vector<int> ids;      // [n, moe layers, top_k]
    std::vector<float> weights;// [n, moe layers, top_k]
    std::vector<float> xe;     // [n, hidden] the rows routed to one expert
    std::vector<float> ye;     // [n, hidden] that expert's output
};

float* row(std::vector<float>& v, int t, int width) { return v.data() + static_cast<std::size_t>(t) * width; }

// SiLU-gated FFN over n rows of xn [n, hidden] -> out [n, hidden].
void ffn(Backend& be, const FfnWeights& f, const float* xn, int n, Batch& b, float* out)
{
    const int width = f.gate.rows;
    be.matmul(f.gate, xn, n, b.gate.data());
    be.matmul(f.up, xn, n, b.up.data());
    be.silu_mul(b.gate.data(), b.up.data(), n * width);
    be.matmul(f.down, b.gate.data(), n, out);
}

void attention(const ModelImpl& m, SessionState& s, Batch& b, int layer, int pos0)
{
    Backend& be = *m.backend;
    const ModelConfig& c = m.config;
    const LayerWeights& L = m.weights.layers[layer];
    const MlaDims& d = m.mla;
    const int H = d.n_heads, dn = d.dn, dr = d.dr, dv = d.dv, dc = d.kv_lora, n = b.n;
    const int qw = H * (dn + dr);
    const float eps = static_cast<float>(c.rms_norm_eps);

    if (L.q_proj.empty()) {
        be.matmul(L.q_a_proj, b.xn.data(), n, b.q_a.data());
        for (int t = 0; t < n; ++t)
            be.rmsnorm(row(b.q_a, t, c.q_lora_rank), L.q_a_norm.data(), c.q_lora_rank, eps, row(b.q_a, t, c.q_lora_rank));
        be.matmul(L.q_b_proj, b.q_a.data(), n, b.q.data());
    } else {
        be.matmul(L.q_proj, b.xn.data(), n, b.q.data());
    }
    be.matmul(L.kv_a_proj, b.xn.data(), n, b.kv_a.data());

    // Per token: its cache row (RMSNorm(c^{KV}), RoPE(k^R)) and its roped q^R.
    for (int t = 0; t < n; ++t) {
        const int pos = pos0 + t;
        rope_cos_sin(m.rope, pos, s.rope_cos.data(), s.rope_sin.data());
        float* cache_row = s.cache.row(layer, pos);
        const float* kva = row(b.kv_a, t, dc + dr);
        be.rmsnorm(kva, L.kv_a_norm.data(), dc, eps, cache_row);
        std::memcpy(cache_row + dc, kva + dc, sizeof(float) * dr);
        be.rope(cache_row + dc, 1, dr, dr, s.rope_cos.data(), s.rope_sin.data());
        float* q = row(b.q, t, qw);
        be.rope(q + dn, H, dn + dr, dr, s.rope_cos.data(), s.rope_sin.data());
        for (int h = 0; h < H; ++h)
            std::memcpy(row(b.q_pe, t, H * dr) + static_cast<std::size_t>(h) * dr, q + static_cast<std::size_t>(h) * (dn + dr) + dn,
                        sizeof(float) * dr);
    }
    // Absorbed attention for the whole batch: token t over positions 0..pos0+t.
    be.absorb_query_batch(L.kv_b_proj, b.q.data(), n, qw, H, dn + dr, dn, dv, b.q_lat.data());
    be.attention_mla_absorbed_batch(b.q_lat.data(), b.q_pe.data(), n, pos0, s.cache.view(layer, pos0 + n), d,
                                    s.scores.data(), b.out_lat.data());
    be.absorb_output_batch(L.kv_b_proj, b.out_lat.data(), n, H, dn, dv, b.attn_o.data());
    be.matmul(L.o_proj, b.attn_o.data(), n, b.out.data());
}

// DeepSeekMoE over the batch: shared experts for all rows; each routed expert
// runs once over the rows that chose it, and its outputs are added back weighted.
void moe(const ModelImpl& m, SessionState& s, Batch& b, int layer, int moe_index, int n_moe)
{
    Backend& be = *m.backend;
    const LayerWeights& L = m.weights.layers[layer];
    const RouteParams& rp = m.route;
    const int n = b.n, hidden = m.config.hidden_size, k = rp.top_k, E = rp.n_experts;
    {
        const StageClock clock(s.stage_times.router);
        be.matmul(L.gate, b.xn.data(), n, b.probs.data());
        for (int t = 0; t < n; ++t) {
            float* p = row(b.probs, t, E);
            be.softmax(p, E);
            const std::size_t at = (static_cast<std::size_t>(t) * n_moe + moe_index) * k;
            be.moe_route(p, rp, b.ids.data() + at, b.weights.data() + at, s.route_scratch.data());
        }
    }
    {
        const StageClock clock(s.stage_times.shared_experts);
        if (L.shared.gate.empty())
            std::fill(b.out.begin(), b.out.begin() + static_cast<std::size_t>(n) * hidden, 0.0f);
        else
            ffn(be, L.shared, b.xn.data(), n, b, b.out.data());
    }
    const StageClock clock(s.stage_times.routed_experts);
    std::vector<int> rows_of;  // the batch rows routed to expert e
    std::vector<float> weight_of;
    for (int e = 0; e < E; ++e) {
        rows_of.clear();
        weight_of.clear();
        for (int t = 0; t < n; ++t)
            for (int j = 0; j < k; ++j) {
                const std::size_t at = (static_cast<std::size_t>(t) * n_moe + moe_index) * k + j;
                if (b.ids[at] == e) {
                    rows_of.push_back(t);
                    weight_of.push_back(b.weights[at]);
                }
            }
        if (rows_of.empty()) continue;
        const int ne = static_cast<int>(rows_of.size());
        for (int i = 0; i < ne; ++i) std::memcpy(row(b.xe, i, hidden), row(b.xn, rows_of[i], hidden), sizeof(float) * hidden);
        ffn(be, L.experts[e], b.xe.data(), ne, b, b.ye.data());
        for (int i = 0; i < ne; ++i) be.axpy(row(b.out, rows_of[i], hidden), weight_of[i], row(b.ye, i, hidden), hidden);
    }
}

}  // namespace

int forward_prefill(const ModelImpl& m, SessionState& s, std::span<const int> tokens, const EventSink& on_event)
{
    if (m.device) return device_forward_prefill(m, s, tokens, on_event);  // the whole step on the GPU
    const int n = static_cast<int>(tokens.size());
    if (n == 0) return 0;
    const StageClock clock(s.stage_times.total);
    s.stage_times.tokens += n;
    Backend& be = *m.backend;
    const ModelConfig& c = m.config;
    const ModelWeights& w = m.weights;
    const MlaDims& d = m.mla;
    const int hidden = c.hidden_size, pos0 = static_cast<int>(s.tokens.size());
    const float eps = static_cast<float>(c.rms_norm_eps);
    s.ensure_capacity(pos0 + n, false);

    int n_moe = 0;
    for (int l = 0; l < c.num_hidden_layers; ++l) n_moe += c.is_moe_layer(l);
    const int width = std::max({c.intermediate_size, c.moe_intermediate_size * std::max(1, c.n_shared_experts), 1});
    const std::size_t N = static_cast<std::size_t>(n);
    Batch b;
    b.n = n;
    b.x.resize(N * hidden);
    b.xn.resize(N * hidden);
    b.q.resize(N * d.n_heads * (d.dn + d.dr));
    b.q_a.resize(N * c.q_lora_rank);
    b.kv_a.resize(N * (d.kv_lora + d.dr));
    b.q_pe.resize(N * d.n_heads * d.dr);
    b.q_lat.resize(N * d.n_heads * d.kv_lora);
    b.out_lat.resize(N * d.n_heads * d.kv_lora);
    b.attn_o.resize(N * d.n_heads * d.dv);
    b.out.resize(N * hidden);
    b.gate.resize(N * width);
    b.up.resize(N * width);
    b.probs.resize(N * std::max(1, c.n_routed_experts));
    b.ids.resize(N * n_moe * c.num_experts_per_tok);
    b.weights.resize(N * n_moe * c.num_experts_per_tok);
    b.xe.resize(N * hidden);
    b.ye.resize(N * hidden);

    for (int t = 0; t < n; ++t) be.embedding(w.embed, tokens[t], row(b.x, t, hidden));
    int moe_index = 0;
    for (int l = 0; l < c.num_hidden_layers; ++l) {
        const LayerWeights& L = w.layers[l];
        // h += MLA(RMSNorm(h))
        for (int t = 0; t < n; ++t) be.rmsnorm(row(b.x, t, hidden), L.input_norm.data(), hidden, eps, row(b.xn, t, hidden));
        {
            const StageClock attn_clock(s.stage_times.attention);
            attention(m, s, b, l, pos0);
        }
        for (int t = 0; t < n; ++t) be.axpy(row(b.x, t, hidden), 1.0f, row(b.out, t, hidden), hidden);
        // h += FFN(RMSNorm(h))
        for (int t = 0; t < n; ++t)
            be.rmsnorm(row(b.x, t, hidden), L.post_attention_norm.data(), hidden, eps, row(b.xn, t, hidden));
        if (L.moe) {
            moe(m, s, b, l, moe_index++, n_moe);
        } else {
            const StageClock dense_clock(s.stage_times.dense_ffn);
            ffn(be, L.mlp, b.xn.data(), n, b, b.out.data());
        }
        for (int t = 0; t < n; ++t) be.axpy(row(b.x, t, hidden), 1.0f, row(b.out, t, hidden), hidden);
    }
    {
        // Logits of the last token only: the prompt's other logits are never sampled.
        const StageClock head_clock(s.stage_times.lm_head);
        be.rmsnorm(row(b.x, n - 1, hidden), w.final_norm.data(), hidden, eps, s.xn.data());
        be.matvec(w.lm_head, s.xn.data(), s.logits.data());
    }
    s.tokens.insert(s.tokens.end(), tokens.begin(), tokens.end());
    s.has_logits = true;

    if (!on_event) return n;
    const int k = c.num_experts_per_tok;
    const int per_group = std::max(1, m.route.n_experts / std::max(1, m.route.n_group));
    for (int t = 0; t < n; ++t) {
        TokenEvent& e = s.event;
        e.token = tokens[t];
        e.position = pos0 + t;
        e.is_prompt = true;
        for (int i = 0; i < n_moe; ++i) {
            RoutingRecord& r = e.routing[i];
            for (int j = 0; j < k; ++j) {
                const std::size_t at = (static_cast<std::size_t>(t) * n_moe + i) * k + j;
                r.experts[j] = b.ids[at];
                r.weights[j] = b.weights[at];
                r.groups[j] = b.ids[at] / per_group;
            }
        }
        e.cache = s.cache.stats(pos0 + t + 1);
        if (!on_event(e)) return t + 1;
    }
    return n;
}

}  // namespace moelens
