// One DeepSeek-V2 decoder step over a ragged batch of rows (arXiv 2405.04434,
// section 2), written once against the backend interface. Notation of the paper:
// h_t the hidden state, c_t^{KV} the compressed latent, k_t^R the decoupled RoPE
// key, W^{UK}/W^{UV} the up-projections (rows of kv_b_proj), W^O the output
// projection.
//
// Rows are the fed tokens of all items, item after item. The walk itself is
// backend/layer_walk.h (shared with the GPU plugin); these are its CPU operations. Every matrix is applied
// to all rows at once (Backend::matmul reads it once per step), every routed
// expert once to the rows that chose it, and each row attends over its own
// sequence's blocks up to its own position. With a single row (one sequence
// decoding) the same walk uses the backend's one-row operations: the query and
// latent projections as one job (matvec_multi), the shared and routed experts as
// one weighted sum (ffn_sum).
#include "runtime/step.h"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cstring>
#include <optional>

#include "backend/layer_walk.h"
#include "moelens/error.h"
#include "runtime/stage_clock.h"

namespace moelens {
namespace {

float* at(std::vector<float>& v, int r, int width) { return v.data() + static_cast<std::size_t>(r) * width; }

template <class T>
void grow(std::vector<T>& v, std::size_t n)
{
    if (v.size() < n) v.resize(n);
}

void size_workspace(const ModelImpl& m, StepWorkspace& w, std::span<const StepItem> items, int rows)
{
    const ModelConfig& c = m.config;
    const MlaDims& d = m.mla;
    const std::size_t R = static_cast<std::size_t>(rows);
    w.rows = rows;
    w.n_moe = 0;
    for (int l = 0; l < c.num_hidden_layers; ++l) w.n_moe += c.is_moe_layer(l);
    // Routing slots per row: the most experts any sequence of the step routes a token to.
    w.top_k = 0;
    for (const StepItem& it : items) w.top_k = std::max(w.top_k, it.seq->routing.params.top_k);
    w.row_seq.clear();
    for (const StepItem& it : items) w.row_seq.insert(w.row_seq.end(), it.tokens.size(), it.seq);
    const int width = std::max({c.intermediate_size, c.moe_intermediate_size * std::max(1, c.n_shared_experts), 1});
    const int sum_width = std::max({c.intermediate_size, c.moe_intermediate_size * (c.n_shared_experts + w.top_k), 1});
    grow(w.x, R * c.hidden_size);
    grow(w.xn, R * c.hidden_size);
    grow(w.q, R * d.n_heads * (d.dn + d.dr));
    grow(w.q_a, R * c.q_lora_rank);
    grow(w.kv_a, R * (d.kv_lora + d.dr));
    grow(w.q_pe, R * d.n_heads * d.dr);
    grow(w.q_lat, R * d.n_heads * d.kv_lora);
    grow(w.out_lat, R * d.n_heads * d.kv_lora);
    grow(w.attn_o, R * d.n_heads * d.dv);
    grow(w.out, R * c.hidden_size);
    grow(w.gate, R * width);
    grow(w.up, R * width);
    grow(w.probs, R * std::max(1, c.n_routed_experts));
    grow(w.xe, R * std::max(1, w.top_k) * c.hidden_size);
    grow(w.ye, R * std::max(1, w.top_k) * c.hidden_size);
    grow(w.expert_scratch, 2 * R * std::max(1, w.top_k) * std::max(1, c.moe_intermediate_size));
    w.groups.reserve(static_cast<std::size_t>(std::max(1, c.n_routed_experts)));
    grow(w.ffn_scratch, 2 * static_cast<std::size_t>(sum_width) + c.hidden_size);
    grow(w.ffn_terms, 1 + static_cast<std::size_t>(w.top_k));
    grow(w.route_scratch, static_cast<std::size_t>(c.n_routed_experts) + std::max(1, c.n_group));
    grow(w.rope_cos, d.dr / 2);
    grow(w.rope_sin, d.dr / 2);
    grow(w.positions, R);
    grow(w.views, R);
    grow(w.expert_rows, R * std::max(1, w.top_k));
    grow(w.expert_weight, R * std::max(1, w.top_k));
    grow(w.expert_begin, static_cast<std::size_t>(c.n_routed_experts) + 2);
    grow(w.route_ids, R * w.n_moe * w.top_k);
    grow(w.route_weights, R * w.n_moe * w.top_k);
}

// SiLU-gated FFN over n rows of xn [n, hidden] -> out [n, hidden].
void ffn_rows(Backend& be, const FfnWeights& f, const float* xn, int n, StepWorkspace& w, float* out)
{
    if (n == 1) {
        const FfnTerm term{&f.gate, &f.up, &f.down, 1.0f};
        be.ffn_sum(&term, 1, xn, out, w.ffn_scratch.data());
        return;
    }
    const int width = f.gate.rows;
    be.matmul(f.gate, xn, n, w.gate.data());
    be.matmul(f.up, xn, n, w.up.data());
    be.silu_mul(w.gate.data(), w.up.data(), n * width);
    be.matmul(f.down, w.gate.data(), n, out);
}

// Multi-head latent attention for every row; reads w.xn, writes w.out.
void attention(const ModelImpl& m, LatentPool& pool, StepWorkspace& w, std::span<const StepItem> items, int layer)
{
    Backend& be = *m.backend;
    const ModelConfig& c = m.config;
    const LayerWeights& L = m.weights.layers[layer];
    const MlaDims& d = m.mla;
    const int H = d.n_heads, dn = d.dn, dr = d.dr, dv = d.dv, dc = d.kv_lora, R = w.rows;
    const int qw = H * (dn + dr);
    const float eps = static_cast<float>(c.rms_norm_eps);

    // Query [H, dn + dr]: q = W^Q h, or with query compression q = W^{UQ} RMSNorm(W^{DQ} h).
    // [c^{KV} ; k^R] = W^{DKV} h   [kv_lora + dr], from the same input h.
    const bool q_lora = L.q_proj.empty();
    const WeightView& first = q_lora ? L.q_a_proj : L.q_proj;
    float* first_out = q_lora ? w.q_a.data() : w.q.data();
    if (R == 1) {
        const WeightView* ws[2] = {&first, &L.kv_a_proj};
        float* ys[2] = {first_out, w.kv_a.data()};
        be.matvec_multi(ws, ys, 2, w.xn.data());
    } else {
        be.matmul(first, w.xn.data(), R, first_out);
        be.matmul(L.kv_a_proj, w.xn.data(), R, w.kv_a.data());
    }
    if (q_lora) {
        for (int r = 0; r < R; ++r)
            be.rmsnorm(at(w.q_a, r, c.q_lora_rank), L.q_a_norm.data(), c.q_lora_rank, eps, at(w.q_a, r, c.q_lora_rank));
        be.matmul(L.q_b_proj, w.q_a.data(), R, w.q.data());
    }

    // Per row: its cache row keeps RMSNorm(c^{KV}) and RoPE(k^R), the only
    // per-token state MLA needs; its q^R (the last dr of each head) is rotated.
    int r = 0;
    for (const StepItem& it : items) {
        for (std::size_t t = 0; t < it.tokens.size(); ++t, ++r) {
            const int pos = w.positions[static_cast<std::size_t>(r)];
            rope_cos_sin(m.rope, pos, w.rope_cos.data(), w.rope_sin.data());
            float* row = pool.row(it.seq->blocks, layer, pos);
            const float* kva = at(w.kv_a, r, dc + dr);
            be.rmsnorm(kva, L.kv_a_norm.data(), dc, eps, row);
            std::memcpy(row + dc, kva + dc, sizeof(float) * dr);
            be.rope(row + dc, 1, dr, dr, w.rope_cos.data(), w.rope_sin.data());
            float* q = at(w.q, r, qw);
            be.rope(q + dn, H, dn + dr, dr, w.rope_cos.data(), w.rope_sin.data());
            for (int h = 0; h < H; ++h)
                std::memcpy(at(w.q_pe, r, H * dr) + static_cast<std::size_t>(h) * dr, q + static_cast<std::size_t>(h) * (dn + dr) + dn,
                            sizeof(float) * dr);
            w.views[static_cast<std::size_t>(r)] = pool.view(it.seq->blocks, layer, pos + 1);
        }
    }

    const bool any_naive = std::any_of(items.begin(), items.end(), [](const StepItem& it) { return it.seq->attention == AttentionPath::naive; });
    const bool all_naive = std::all_of(items.begin(), items.end(), [](const StepItem& it) { return it.seq->attention == AttentionPath::naive; });
    if (!all_naive) {
        // Absorb W^{UK} into the query: q_nope_h . (W^{UK}_h c) = (W^{UK}_h^T q_nope_h) . c,
        // so scores are taken against the latents directly; attend; absorb W^{UV}
        // into the output: sum_s p_s (W^{UV}_h c_s) = W^{UV}_h (sum_s p_s c_s).
        // (Naive rows, if any, are computed too and overwritten below.)
        if (R == 1)
            be.absorb_query(L.kv_b_proj, w.q.data(), H, dn + dr, dn, dv, w.q_lat.data());
        else
            be.absorb_query_batch(L.kv_b_proj, w.q.data(), R, qw, H, dn + dr, dn, dv, w.q_lat.data());
        be.attention_mla_absorbed_rows(w.q_lat.data(), w.q_pe.data(), R, w.views.data(), d, w.out_lat.data());
        if (R == 1)
            be.absorb_output(L.kv_b_proj, w.out_lat.data(), H, dn, dv, w.attn_o.data());
        else
            be.absorb_output_batch(L.kv_b_proj, w.out_lat.data(), R, H, dn, dv, w.attn_o.data());
    }
    if (any_naive) {
        // The reference path: decompress every cached latent into per-head k^C and
        // v, [k_nope_h ; v_h] = W^{UKV}_h c_s, and attend over those.
        const std::size_t kv_stride = static_cast<std::size_t>(H) * (dn + dv);
        r = 0;
        for (const StepItem& it : items) {
            const int n = static_cast<int>(it.tokens.size());
            if (it.seq->attention != AttentionPath::naive) {
                r += n;
                continue;
            }
            const int end = w.positions[static_cast<std::size_t>(r + n - 1)] + 1;
            grow(w.kv_naive, static_cast<std::size_t>(end) * kv_stride);
            grow(w.scores, static_cast<std::size_t>(end) * H);
            for (int s = 0; s < end; ++s)
                be.matvec(L.kv_b_proj, pool.row(it.seq->blocks, layer, s), w.kv_naive.data() + s * kv_stride);
            for (int t = 0; t < n; ++t, ++r)
                be.attention_mla_naive(at(w.q, r, qw), w.kv_naive.data(), w.views[static_cast<std::size_t>(r)], d,
                                       w.scores.data(), at(w.attn_o, r, H * dv));
        }
    }
    // u = W^O [o_1; ...; o_H]
    be.matmul(L.o_proj, w.attn_o.data(), R, w.out.data());
}

// Rows reach a virtual device only if it can take them: a lost device, or one
// whose weights and this layer's activations there exceed its memory, fails the
// step (moelens/expert_parallel.h). Checked before anything is counted.
void check_devices(const ModelImpl& m, StepWorkspace& w, int layer, int mi)
{
    const ExpertPlacement& p = *w.placement;
    const int D = p.devices;
    w.device_slots.assign(static_cast<std::size_t>(D), 0);
    for (int r = 0; r < w.rows; ++r)
        for (int j = 0; j < w.row_seq[static_cast<std::size_t>(r)]->routing.params.top_k; ++j)
            ++w.device_slots[static_cast<std::size_t>(p.device(w.route_ids[(static_cast<std::size_t>(r) * w.n_moe + mi) * w.top_k + j]))];
    // Each (row, expert) product holds its input and output row and its gate and up activations.
    const std::uint64_t slot_bytes =
        sizeof(float) * (2ull * m.config.hidden_size + 2ull * m.config.moe_intermediate_size);
    const auto mib = [](std::uint64_t bytes) {
        char text[32];
        std::snprintf(text, sizeof text, "%.2f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
        return std::string(text);
    };
    for (int d = 0; d < D; ++d) {
        const std::uint64_t slots = w.device_slots[static_cast<std::size_t>(d)];
        if (slots == 0) continue;
        const std::string name = "virtual device " + std::to_string(d);
        if (w.device_lost[static_cast<std::size_t>(d)]) {
            const auto held = std::count(p.device_of.begin(), p.device_of.end(), d);
            throw DeviceFault(d, name + " was lost: the " + std::to_string(held) + " experts on it cannot be reached (layer " +
                                     std::to_string(layer) + " routed " + std::to_string(slots) +
                                     " rows to them). This generation stopped; the others' devices are unaffected");
        }
        const std::uint64_t need = slots * slot_bytes;
        const std::uint64_t weights = p.weight_bytes[static_cast<std::size_t>(d)];
        if (w.device_memory > 0 && weights + need > w.device_memory)
            throw DeviceFault(d, name + " is out of memory: layer " + std::to_string(layer) + " sends it " +
                                     std::to_string(slots) + " expert rows (" + mib(need) + " of activations) on top of its " +
                                     mib(weights) + " of weights, over its " + mib(w.device_memory) +
                                     ". This generation stopped; fewer tokens per step, more memory per device or more "
                                     "devices would fit it");
        std::uint64_t& peak = w.traffic->peak_activation_bytes[static_cast<std::size_t>(d)];
        peak = std::max(peak, need);
    }
}

// What the exchange moves for MoE layer `mi` of this step (moelens/expert_parallel.h):
// each row goes once to every other device holding one of its experts (dispatch),
// and every expert output computed away from the row's home comes back (combine).
// Counted for the scheduler and for the row's sequence.
void count_traffic(StepWorkspace& w, int mi)
{
    const ExpertPlacement& p = *w.placement;
    const int D = p.devices;
    w.touched.assign(static_cast<std::size_t>(D), 0);
    for (int r = 0; r < w.rows; ++r) {
        SequenceState& seq = *w.row_seq[static_cast<std::size_t>(r)];
        const int home = seq.home_device, k = seq.routing.params.top_k;
        std::fill(w.touched.begin(), w.touched.end(), 0);
        int reached = 0;
        for (ExpertTraffic* t : {w.traffic, &seq.traffic}) ++t->token_layers;
        for (int j = 0; j < k; ++j) {
            const int d = p.device(w.route_ids[(static_cast<std::size_t>(r) * w.n_moe + mi) * w.top_k + j]);
            const bool first = !w.touched[static_cast<std::size_t>(d)];
            if (first) {
                w.touched[static_cast<std::size_t>(d)] = 1;
                ++reached;
            }
            for (ExpertTraffic* t : {w.traffic, &seq.traffic}) {
                ++t->combine_rows[static_cast<std::size_t>(d) * D + home];
                ++t->expert_rows[static_cast<std::size_t>(d)];
                if (first) ++t->dispatch_rows[static_cast<std::size_t>(home) * D + d];
            }
        }
        for (ExpertTraffic* t : {w.traffic, &seq.traffic}) ++t->touched[static_cast<std::size_t>(reached)];
        // Device-limited routing: whole groups per device, so M groups = at most M devices.
        if (p.device_limited && reached > seq.routing.params.topk_group) {
            for (ExpertTraffic* t : {w.traffic, &seq.traffic}) ++t->limit_exceeded;
            assert(!"a token's experts lie on more devices than its device limit");
        }
    }
}

// DeepSeekMoE: shared experts for every row, plus each row's top-k routed
// experts weighted by their gate scores. Reads w.xn, writes w.out and the
// routing of MoE layer `mi`.
void moe(const ModelImpl& m, StepWorkspace& w, int layer, int mi)
{
    Backend& be = *m.backend;
    const LayerWeights& L = m.weights.layers[layer];
    const int R = w.rows, hidden = m.config.hidden_size, E = m.route.n_experts;
    // Each row routes with its sequence's settings: k(r) experts, in slots of w.top_k.
    const auto choice = [&](int r, int j) { return (static_cast<std::size_t>(r) * w.n_moe + mi) * w.top_k + j; };
    const auto k = [&](int r) { return w.row_seq[static_cast<std::size_t>(r)]->routing.params.top_k; };
    {
        // s_i = Softmax_i(u^T e_i) over the routed experts, then the top-k.
        const StageClock clock(w.times.router);
        be.matmul(L.gate, w.xn.data(), R, w.probs.data());
        for (int r = 0; r < R; ++r) {
            float* p = at(w.probs, r, E);
            const SequenceRouting& route = w.row_seq[static_cast<std::size_t>(r)]->routing;
            be.softmax(p, E);
            be.moe_route(p, route.params, route.disabled_in(mi), w.route_ids.data() + choice(r, 0),
                         w.route_weights.data() + choice(r, 0), w.route_scratch.data());
        }
    }
    if (w.placement) {
        check_devices(m, w, layer, mi);
        count_traffic(w, mi);
    }
    if (R == 1) {
        // One row: shared and routed experts as one weighted sum (two jobs on the
        // CPU), timed together in routed_experts.
        const StageClock clock(w.times.routed_experts);
        int n = 0;
        if (!L.shared.gate.empty()) w.ffn_terms[n++] = {&L.shared.gate, &L.shared.up, &L.shared.down, 1.0f};
        for (int j = 0; j < k(0); ++j) {
            const FfnWeights& e = L.experts[w.route_ids[choice(0, j)]];
            w.ffn_terms[n++] = {&e.gate, &e.up, &e.down, w.route_weights[choice(0, j)]};
        }
        be.ffn_sum(w.ffn_terms.data(), n, w.xn.data(), w.out.data(), w.ffn_scratch.data());
        return;
    }
    {
        const StageClock clock(w.times.shared_experts);
        if (L.shared.gate.empty())
            std::fill(w.out.begin(), w.out.begin() + static_cast<std::size_t>(R) * hidden, 0.0f);
        else
            ffn_rows(be, L.shared, w.xn.data(), R, w, w.out.data());
    }
    // The rows grouped by expert (a counting sort), so each expert's weights are
    // read once for every row that chose it; its outputs are added back weighted.
    const StageClock clock(w.times.routed_experts);
    std::fill(w.expert_begin.begin(), w.expert_begin.begin() + E + 2, 0);
    int slots = 0;
    for (int r = 0; r < R; ++r)
        for (int j = 0; j < k(r); ++j, ++slots) ++w.expert_begin[static_cast<std::size_t>(w.route_ids[choice(r, j)]) + 2];
    for (int e = 0; e < E; ++e) w.expert_begin[static_cast<std::size_t>(e) + 2] += w.expert_begin[static_cast<std::size_t>(e) + 1];
    for (int r = 0; r < R; ++r)
        for (int j = 0; j < k(r); ++j) {
            const int slot = w.expert_begin[static_cast<std::size_t>(w.route_ids[choice(r, j)]) + 1]++;
            w.expert_rows[static_cast<std::size_t>(slot)] = r;
            w.expert_weight[static_cast<std::size_t>(slot)] = w.route_weights[choice(r, j)];
        }
    // The rows' inputs in that order (with virtual devices this is the dispatch:
    // each device's rows are its part of xe), every expert's FFN over its rows in
    // one call (with virtual devices one call per device, in turn), then each
    // output added to its row with its routing weight, in expert order whatever
    // the placement (so outputs do not depend on it).
    ExpertTraffic* traffic = w.placement ? w.traffic : nullptr;
    {
        std::optional<StageClock> dispatch;
        if (traffic) dispatch.emplace(traffic->dispatch_seconds);
        for (int i = 0; i < slots; ++i)
            std::memcpy(at(w.xe, i, hidden), at(w.xn, w.expert_rows[static_cast<std::size_t>(i)], hidden), sizeof(float) * hidden);
    }
    w.groups.clear();
    w.group_expert.clear();
    for (int e = 0; e < E; ++e) {
        const int b = w.expert_begin[static_cast<std::size_t>(e)], ne = w.expert_begin[static_cast<std::size_t>(e) + 1] - b;
        const FfnWeights& f = L.experts[static_cast<std::size_t>(e)];
        if (ne == 0) continue;
        w.groups.push_back({&f.gate, &f.up, &f.down, b, ne});
        w.group_expert.push_back(e);
    }
    if (!traffic) {
        be.ffn_groups(w.groups.data(), static_cast<int>(w.groups.size()), w.xe.data(), w.ye.data(), w.expert_scratch.data());
    } else {
        const ExpertPlacement& p = *w.placement;
        for (int d = 0; d < p.devices; ++d) {
            w.device_groups.clear();
            for (std::size_t g = 0; g < w.groups.size(); ++g)
                if (p.device(w.group_expert[g]) == d) w.device_groups.push_back(w.groups[g]);
            const StageClock clock(traffic->expert_seconds[static_cast<std::size_t>(d)]);
            be.ffn_groups(w.device_groups.data(), static_cast<int>(w.device_groups.size()), w.xe.data(), w.ye.data(),
                          w.expert_scratch.data());
        }
    }
    std::optional<StageClock> combine;
    if (traffic) combine.emplace(traffic->combine_seconds);
    for (int i = 0; i < slots; ++i)
        be.axpy(at(w.out, w.expert_rows[static_cast<std::size_t>(i)], hidden), w.expert_weight[static_cast<std::size_t>(i)],
                at(w.ye, i, hidden), hidden);
}

}  // namespace

void StepWorkspace::init_event(const ModelImpl& m, int top_k, TokenEvent& e)
{
    const ModelConfig& c = m.config;
    e.routing.clear();
    for (int l = 0; l < c.num_hidden_layers; ++l) {
        if (!c.is_moe_layer(l)) continue;
        RoutingRecord rec;
        rec.layer = l;
        rec.experts.resize(static_cast<std::size_t>(top_k));
        rec.weights.resize(static_cast<std::size_t>(top_k));
        rec.groups.resize(static_cast<std::size_t>(top_k));
        e.routing.push_back(std::move(rec));
    }
}

void StepWorkspace::fill_routing(const ModelImpl& m, int r, TokenEvent& e) const
{
    const int per_group = std::max(1, m.route.n_experts / std::max(1, m.route.n_group));
    for (std::size_t i = 0; i < e.routing.size(); ++i) {
        RoutingRecord& rec = e.routing[i];
        for (std::size_t j = 0; j < rec.experts.size(); ++j) {
            const std::size_t a = (static_cast<std::size_t>(r) * n_moe + i) * top_k + j;
            rec.experts[j] = route_ids[a];
            rec.weights[j] = route_weights[a];
            rec.groups[j] = route_ids[a] / per_group;
        }
    }
}

namespace {

// The CPU's operations for the layer walk (backend/layer_walk.h), over every row
// of the step.
struct CpuStepOps {
    const ModelImpl& m;
    LatentPool& pool;
    StepWorkspace& w;
    std::span<const StepItem> items;
    Backend& be;
    int rows, hidden;
    float eps;

    CpuStepOps(const ModelImpl& m_, LatentPool& pool_, StepWorkspace& w_, std::span<const StepItem> items_)
        : m(m_), pool(pool_), w(w_), items(items_), be(*m_.backend), rows(w_.rows), hidden(m_.config.hidden_size),
          eps(static_cast<float>(m_.config.rms_norm_eps))
    {
    }

    void embed()
    {
        int r = 0;
        for (const StepItem& it : items) {
            const int pos0 = it.seq->position();
            for (std::size_t t = 0; t < it.tokens.size(); ++t, ++r) {
                w.positions[static_cast<std::size_t>(r)] = pos0 + static_cast<int>(t);
                be.embedding(m.weights.embed, it.tokens[t], at(w.x, r, hidden));
            }
        }
    }
    void norm(const std::vector<float>& weight)
    {
        for (int i = 0; i < rows; ++i) be.rmsnorm(at(w.x, i, hidden), weight.data(), hidden, eps, at(w.xn, i, hidden));
    }
    void input_norm(int l) { norm(m.weights.layers[l].input_norm); }
    void post_norm(int l) { norm(m.weights.layers[l].post_attention_norm); }
    void attention(int l)
    {
        const StageClock clock(w.times.attention);
        moelens::attention(m, pool, w, items, l);
    }
    bool is_moe(int l) const { return m.weights.layers[l].moe; }
    void moe(int l, int i) { moelens::moe(m, w, l, i); }
    void dense(int l)
    {
        const StageClock clock(w.times.dense_ffn);
        ffn_rows(be, m.weights.layers[l].mlp, w.xn.data(), rows, w, w.out.data());
    }
    void add_out()
    {
        for (int i = 0; i < rows; ++i) be.axpy(at(w.x, i, hidden), 1.0f, at(w.out, i, hidden), hidden);
    }
    // Only where asked (an item's last row): the lm_head is read once for all of them.
    void logits()
    {
        const StageClock clock(w.times.lm_head);
        const ModelConfig& c = m.config;
        int n = 0, r = 0;
        for (const StepItem& it : items) {
            r += static_cast<int>(it.tokens.size());
            if (!it.logits) continue;
            grow(w.head_in, static_cast<std::size_t>(n + 1) * hidden);
            be.rmsnorm(at(w.x, r - 1, hidden), m.weights.final_norm.data(), hidden, eps, at(w.head_in, n, hidden));
            ++n;
        }
        if (n == 1) {
            for (const StepItem& it : items)
                if (it.logits) be.matvec(m.weights.lm_head, w.head_in.data(), it.seq->logits.data());
        } else if (n > 1) {
            grow(w.head_out, static_cast<std::size_t>(n) * c.vocab_size);
            be.matmul(m.weights.lm_head, w.head_in.data(), n, w.head_out.data());
            int i = 0;
            for (const StepItem& it : items)
                if (it.logits) std::memcpy(it.seq->logits.data(), at(w.head_out, i++, c.vocab_size), sizeof(float) * c.vocab_size);
        }
    }
};

}  // namespace

void run_step(const ModelImpl& m, LatentPool& pool, StepWorkspace& w, std::span<const StepItem> items)
{
    int rows = 0;
    for (const StepItem& it : items) rows += static_cast<int>(it.tokens.size());
    if (rows == 0) return;
    size_workspace(m, w, items, rows);
    if (m.device) return run_device_step(m, w, items);  // the whole step on the GPU

    const StageClock clock(w.times.total);
    w.times.tokens += rows;
    CpuStepOps ops(m, pool, w, items);
    walk_decoder(ops, m.config.num_hidden_layers);
    // A weight file cut short on disk while mapped read as zeros: the step is wrong.
    if (m.checkpoint) m.checkpoint->check_unchanged();
    for (const StepItem& it : items) {
        it.seq->tokens.insert(it.seq->tokens.end(), it.tokens.begin(), it.tokens.end());
        it.seq->has_logits = it.logits;
    }
}

}  // namespace moelens
