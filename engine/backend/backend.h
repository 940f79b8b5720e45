#pragma once
// The operations a DeepSeek-V2 forward step needs, as one small interface.
// runtime/forward.cpp is written once against it; cpu/ implements it here and the
// CUDA plugin will implement the same operations. Weights are passed in their
// stored dtype (WeightView); activations are always f32. No shape is assumed to
// be a power of two.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "backend/cuda_plugin_abi.h"
#include "moelens/model.h"
#include "moelens/safetensors.h"

namespace moelens {

// A row-major matrix [rows, cols] in its stored dtype (F32, F16 or BF16), usually
// pointing into a memory-mapped file. Hugging Face stores y = x W^T, so rows =
// out_features and cols = in_features.
//
// DType::U8 marks int8 weights in the q8 format (cpu/simd/q8.h): each value is
// stored + 128, and `scales` holds one f32 per 64 values of a row (cols is a
// multiple of 64 for these).
struct WeightView {
    const std::byte* data = nullptr;
    DType dtype = DType::F32;
    int rows = 0;
    int cols = 0;
    const float* scales = nullptr;  // [rows, cols / 64] for DType::U8, else null

    bool empty() const { return data == nullptr; }
    // Rows [first, first + count) as a matrix of their own.
    WeightView row_slice(int first, int count) const
    {
        return {data + static_cast<std::size_t>(first) * cols * dtype_size(dtype), dtype, count, cols,
                scales ? scales + static_cast<std::size_t>(first) * (cols / 64) : nullptr};
    }
};

// Top-k routing of one token over the routed experts: the plugin ABI's struct,
// so the CPU, the ABI and the GPU gate share one definition.
using RouteParams = MoelensRouteParams;

// The router of a config (greedy, or group-limited with its groups).
inline RouteParams route_params(const ModelConfig& c)
{
    const bool grouped = c.topk_method == TopkMethod::group_limited_greedy;
    return RouteParams{c.n_routed_experts, c.num_experts_per_tok, grouped ? 1 : 0, grouped ? c.n_group : 1,
                       grouped ? c.topk_group : 1, c.norm_topk_prob ? 1 : 0, static_cast<float>(c.routed_scaling_factor)};
}

// MLA head geometry for the attention ops.
struct MlaDims {
    int n_heads = 0;   // H
    int kv_lora = 0;   // d_c
    int dn = 0;        // qk_nope_head_dim
    int dr = 0;        // qk_rope_head_dim
    int dv = 0;        // v_head_dim
    float softmax_scale = 0.0f;
};

// One layer's latent cache of one sequence as the attention ops read it: n_ctx
// rows of `stride` floats, each row = c_kv [kv_lora] then roped k_pe [dr], kept in
// blocks of `block_rows` positions (runtime/latent_pool.h). Position s lives in
// block s / block_rows, at row s % block_rows of that block's part for this layer,
// which starts `layer_offset` floats after the block's base.
struct LatentCacheView {
    const float* const* blocks = nullptr;  // block base pointers in position order
    std::size_t layer_offset = 0;
    int block_rows = 0;
    int stride = 0;
    int n_ctx = 0;

    const float* row(int s) const
    {
        return blocks[s / block_rows] + layer_offset + static_cast<std::size_t>(s % block_rows) * stride;
    }
    // Rows stored one after the other from *rows (tests and the GPU kernels'
    // CPU twins); `rows` must outlive the view.
    static LatentCacheView contiguous(const float* const* rows, int stride, int n_ctx)
    {
        return {rows, 0, n_ctx > 0 ? n_ctx : 1, stride, n_ctx};
    }
};

// One SiLU-gated FFN of a weighted sum (Backend::ffn_sum): its three matrices
// ([width, hidden], [width, hidden], [hidden, width]) and its weight.
struct FfnTerm {
    const WeightView* gate = nullptr;
    const WeightView* up = nullptr;
    const WeightView* down = nullptr;
    float weight = 1.0f;
};

// One routed expert's share of a step (Backend::ffn_groups): its three matrices
// and the rows of the gathered inputs that chose it.
struct FfnGroup {
    const WeightView* gate = nullptr;
    const WeightView* up = nullptr;
    const WeightView* down = nullptr;
    int first = 0;  // first row of this group in x and y
    int n = 0;      // its rows
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual const char* name() const = 0;

    // y[rows] = W x, x[cols].
    virtual void matvec(const WeightView& w, const float* x, float* y) = 0;
    // y[t] = W x[t] for n vectors: x [n, cols], y [n, rows], both contiguous.
    // Prefill uses it so that a matrix is read once for many tokens; a backend
    // without a batched product runs n matvecs.
    virtual void matmul(const WeightView& w, const float* x, int n, float* y)
    {
        for (int t = 0; t < n; ++t)
            matvec(w, x + static_cast<std::size_t>(t) * w.cols, y + static_cast<std::size_t>(t) * w.rows);
    }
    // Several products of one input, y[i] = W[i] x for i < n (e.g. q_proj and
    // kv_a_proj of the same normalised hidden state): one call, so a backend can
    // run them as one job and prepare x once. Default: n matvecs.
    virtual void matvec_multi(const WeightView* const* w, float* const* y, int n, const float* x)
    {
        for (int i = 0; i < n; ++i) matvec(*w[i], x, y[i]);
    }
    // The weighted sum of SiLU-gated FFNs of one input (DeepSeekMoE's shared and
    // routed experts of a token, or one dense FFN with weight 1):
    //   out[hidden] = sum_i terms[i].weight * down_i (silu(gate_i x) * (up_i x)).
    // scratch: 2 * sum_i gate_i.rows + hidden floats. Default: the products one by one.
    virtual void ffn_sum(const FfnTerm* terms, int n, const float* x, float* out, float* scratch)
    {
        if (n <= 0) return;
        const int hidden = terms[0].down->rows;
        int width = 0;
        for (int i = 0; i < n; ++i) width += terms[i].gate->rows;
        float* tmp = scratch + 2 * static_cast<std::size_t>(width);
        for (int r = 0; r < hidden; ++r) out[r] = 0.0f;
        for (int i = 0; i < n; ++i) {
            const int w = terms[i].gate->rows;
            matvec(*terms[i].gate, x, scratch);
            matvec(*terms[i].up, x, scratch + w);
            silu_mul(scratch, scratch + w, w);
            matvec(*terms[i].down, scratch, tmp);
            axpy(out, terms[i].weight, tmp, hidden);
        }
    }
    // The SiLU-gated FFNs of many groups of rows (the routed experts of a step,
    // each over the rows that chose it): for every group g and row s of it,
    //   y[s] = down_g (silu(gate_g x[s]) * (up_g x[s])),   x, y [rows, hidden].
    // One call, so a backend can stream every expert's weights in one job.
    // scratch: 2 * sum_g n_g * gate_g.rows floats. Default: group by group.
    virtual void ffn_groups(const FfnGroup* groups, int n_groups, const float* x, float* y, float* scratch)
    {
        std::size_t off = 0;
        for (int i = 0; i < n_groups; ++i) {
            const FfnGroup& g = groups[i];
            const int hidden = g.down->rows, width = g.gate->rows;
            float* gate = scratch + off;
            float* up = gate + static_cast<std::size_t>(g.n) * width;
            const float* xg = x + static_cast<std::size_t>(g.first) * hidden;
            matmul(*g.gate, xg, g.n, gate);
            matmul(*g.up, xg, g.n, up);
            silu_mul(gate, up, g.n * width);
            matmul(*g.down, gate, g.n, y + static_cast<std::size_t>(g.first) * hidden);
            off += 2 * static_cast<std::size_t>(g.n) * width;
        }
    }
    // y[cols] = W^T x, x[rows] (used to absorb W_UK into the query).
    virtual void matvec_transposed(const WeightView& w, const float* x, float* y) = 0;
    // The absorbed query for every head h < n_heads: q_lat[h] [kv_lora] = W_UK_h^T q_nope_h,
    // with W_UK_h = rows [h*(dn+dv), h*(dn+dv)+dn) of kv_b [H*(dn+dv), kv_lora] and
    // q_nope_h = q + h*q_stride. One call for all heads, so a backend can spread
    // the heads over its threads at once.
    virtual void absorb_query(const WeightView& kv_b, const float* q, int n_heads, int q_stride, int dn, int dv,
                              float* q_lat)
    {
        for (int h = 0; h < n_heads; ++h)
            matvec_transposed(kv_b.row_slice(h * (dn + dv), dn), q + static_cast<std::size_t>(h) * q_stride,
                              q_lat + static_cast<std::size_t>(h) * kv_b.cols);
    }
    // The heads' values from the latent output: o[h] [dv] = W_UV_h out_lat[h], with
    // W_UV_h = rows [h*(dn+dv)+dn, (h+1)*(dn+dv)) of kv_b.
    virtual void absorb_output(const WeightView& kv_b, const float* out_lat, int n_heads, int dn, int dv, float* o)
    {
        for (int h = 0; h < n_heads; ++h)
            matvec(kv_b.row_slice(h * (dn + dv) + dn, dv), out_lat + static_cast<std::size_t>(h) * kv_b.cols,
                   o + static_cast<std::size_t>(h) * dv);
    }
    // absorb_query and absorb_output for n tokens at once (prefill): token t's
    // query at q + t*q_row, its q_lat at q_lat + t*H*kv_lora, its out_lat at
    // out_lat + t*H*kv_lora, its values at o + t*H*dv. A backend can then read
    // each head's W_UK / W_UV once for all n tokens. Default: token by token.
    virtual void absorb_query_batch(const WeightView& kv_b, const float* q, int n, int q_row, int n_heads, int q_stride,
                                    int dn, int dv, float* q_lat)
    {
        for (int t = 0; t < n; ++t)
            absorb_query(kv_b, q + static_cast<std::size_t>(t) * q_row, n_heads, q_stride, dn, dv,
                         q_lat + static_cast<std::size_t>(t) * n_heads * kv_b.cols);
    }
    virtual void absorb_output_batch(const WeightView& kv_b, const float* out_lat, int n, int n_heads, int dn, int dv,
                                     float* o)
    {
        for (int t = 0; t < n; ++t)
            absorb_output(kv_b, out_lat + static_cast<std::size_t>(t) * n_heads * kv_b.cols, n_heads, dn, dv,
                          o + static_cast<std::size_t>(t) * n_heads * dv);
    }
    // y[cols] = row `row` of the table, widened.
    virtual void embedding(const WeightView& table, int row, float* y) = 0;
    // y = weight * x / sqrt(mean(x^2) + eps); y may alias x.
    virtual void rmsnorm(const float* x, const float* weight, int n, float eps, float* y) = 0;
    // Rotates n_vectors vectors of dr floats (vector i starts at x + i*stride) by the
    // interleaved pairs (x[2i], x[2i+1]) with cos[i], sin[i], i < dr/2.
    virtual void rope(float* x, int n_vectors, int stride, int dr, const float* cos, const float* sin) = 0;
    // In place, over n floats, computed in f32 with the max subtracted.
    virtual void softmax(float* x, int n) = 0;
    // gate[i] = silu(gate[i]) * up[i].
    virtual void silu_mul(float* gate, const float* up, int n) = 0;
    // y += a * x.
    virtual void axpy(float* y, float a, const float* x, int n) = 0;
    // probs [n_experts] (softmax of the gate) -> ids[top_k], weights[top_k] in
    // descending score order; scratch holds n_experts + n_group floats. Experts
    // with disabled[e] != 0 are never chosen nor score their group (disabled may
    // be null: none; moelens/moe_settings.h).
    virtual void moe_route(const float* probs, const RouteParams& p, const std::uint8_t* disabled, int* ids, float* weights,
                           float* scratch) = 0;
    // Absorbed MLA for one query token: q_lat [H, kv_lora] (q_nope already
    // multiplied by W_UK^T), q_pe [H, dr] (roped). One pass with an online
    // softmax, so no scores are kept:
    // out_lat [H, kv_lora] = softmax(scale * (q_lat.c_s + q_pe.k_pe_s)) weighted sum of c_s.
    virtual void attention_mla_absorbed(const float* q_lat, const float* q_pe, const LatentCacheView& cache,
                                        const MlaDims& d, float* out_lat) = 0;
    // Absorbed MLA for n query rows of a ragged batch (prompt chunks and decode rows
    // of several sequences): row i attends over caches[i] (its sequence's blocks,
    // n_ctx = its position + 1). q_lat [n, H, kv_lora], q_pe [n, H, dr],
    // out_lat [n, H, kv_lora]. Default: row by row.
    virtual void attention_mla_absorbed_rows(const float* q_lat, const float* q_pe, int n, const LatentCacheView* caches,
                                             const MlaDims& d, float* out_lat)
    {
        const std::size_t lat = static_cast<std::size_t>(d.n_heads) * d.kv_lora, pe = static_cast<std::size_t>(d.n_heads) * d.dr;
        for (int t = 0; t < n; ++t) attention_mla_absorbed(q_lat + t * lat, q_pe + t * pe, caches[t], d, out_lat + t * lat);
    }
    // Naive MLA for one query token: q [H, dn+dr] (q_pe part roped), kv [n_ctx, H*(dn+dv)]
    // the decompressed keys/values (kv_b_proj applied to each cached c_kv), k_pe from
    // the cache; scores scratch [H, n_ctx]. out [H, dv].
    virtual void attention_mla_naive(const float* q, const float* kv, const LatentCacheView& cache, const MlaDims& d,
                                     float* scores, float* out) = 0;
};

// A CPU backend with a persistent pool of `threads` workers (0 = hardware threads).
std::unique_ptr<Backend> make_cpu_backend(unsigned threads);

}  // namespace moelens
