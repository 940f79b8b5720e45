// One DeepSeek-V2 step on the GPU over a ragged batch of rows (tokens of several
// sequences, each at its own position): the layer walk of backend/layer_walk.h
// (shared with runtime/step.cpp, read that first) with GPU operations: every
// product over all rows at once, the routed experts as grouped products over the
// rows each expert received, each row attending over its own sequence's pages of
// the shared cache pool.
#include <algorithm>
#include <string>

#include "backend/layer_walk.h"
#include "cuda/cuda_model.h"
#include "cuda/kernels/attention_mla_decode.h"
#include "cuda/kernels/cuda_error.h"
#include "cuda/kernels/moe_permute.h"
#include "cuda/kernels/rmsnorm.h"
#include "cuda/kernels/rope_yarn.h"
#include "cuda/kernels/silu_mul.h"
#include "cuda/kernels/vector_ops.h"

namespace moelens::cuda {

// Below this many tokens a product is a matrix-vector sweep limited by reading
// the weights, which our kernel does at the same speed as cuBLAS and in f32.
constexpr int kBlasMinTokens = 16;

void CudaModel::project(const DeviceMatrix& w, const float* x, int n, float* y)
{
    const cudaStream_t s = m_stream.get();
    if (m_blas && !m_precise && n >= kBlasMinTokens && w.ref.type == ElemType::bf16) {
        f32_to_bf16(x, m_bf16_in.get(), static_cast<long long>(n) * w.ref.cols, s);
        m_blas->gemm_bf16(static_cast<const std::uint16_t*>(w.ref.data), w.ref.rows, w.ref.cols, m_bf16_in.get(), n, y, s);
        return;
    }
    matmul(w.ref, x, n, y, s);
}

// SiLU-gated FFN: out [n, hidden] = W_down (silu(W_gate x) * (W_up x)).
void CudaModel::ffn(const DeviceFfn& f, const float* x, int n, float* out)
{
    const int width = f.gate.ref.rows;
    project(f.gate, x, n, m_ffn_gate.get());
    project(f.up, x, n, m_ffn_up.get());
    silu_mul(m_ffn_gate.get(), m_ffn_up.get(), static_cast<long long>(n) * width, m_stream.get());
    project(f.down, m_ffn_gate.get(), n, out);
}

// Multi-head latent attention for the step's rows; reads m_xn, writes m_attn_out.
void CudaModel::attention(int layer, int n, int max_ctx)
{
    const cudaStream_t s = m_stream.get();
    const ModelDims& d = m_dims;
    const DeviceLayer& L = m_layers[layer];
    const int H = d.heads, dn = d.dn, dr = d.dr, dv = d.dv, dc = d.kv_lora;
    const int q_stride = dn + dr, row = dc + dr;

    // q [n, H, dn + dr] = W^Q h, or W^{UQ} RMSNorm(W^{DQ} h)
    if (L.q_proj.empty()) {
        project(L.q_a_proj, m_xn.get(), n, m_q_a.get());
        rmsnorm(m_q_a.get(), L.q_a_norm.get(), n, d.q_lora, d.eps, m_q_a.get(), s);
        project(L.q_b_proj, m_q_a.get(), n, m_q.get());
    } else {
        project(L.q_proj, m_xn.get(), n, m_q.get());
    }
    // [c^{KV} ; k^R] = W^{DKV} h; the cache keeps RMSNorm(c^{KV}) and RoPE(k^R),
    // each row at its sequence's pool row for its position
    project(L.kv_a_proj, m_xn.get(), n, m_kv_a.get());
    rmsnorm_rows(m_kv_a.get(), row, L.kv_a_norm.get(), n, dc, d.eps, m_kv_a.get(), row, s);
    rope_interleaved(m_kv_a.get() + dc, n, row, 1, dr, dr, m_cos.get(), m_sin.get(), s);
    const LatentPages pages = layer_pages(layer);
    latent_rows_store(m_kv_a.get(), n, m_dest_rows.get(), pages, s);
    rope_interleaved(m_q.get() + dn, n, H * q_stride, H, q_stride, dr, m_cos.get(), m_sin.get(), s);

    // Absorb W^{UK} into the query, attend over the latents (each row through its
    // own page-table row, up to its own position), absorb W^{UV} after.
    matvec_transposed_heads(L.kv_b_proj.ref, H, dn, dn + dv, m_q.get(), q_stride, n, H * q_stride, m_q_lat.get(), s);
    MlaDecodeShape shape{n, H, dc, dr, d.softmax_scale, max_ctx, m_table_cols, q_stride, H * q_stride, m_table_cols};
    const std::size_t need = mla_decode_workspace_floats(shape, m_sms);
    if (m_attn_work.size() < need) m_attn_work.resize(need * 2, "MLA attention workspace");
    attention_mla_decode(m_q_lat.get(), m_q.get() + dn, pages, m_page_table.get(), m_ctx_len.get(), shape,
                         m_out_lat.get(), m_attn_work.get(), m_attn_work.size(), m_sms, s);
    matvec_heads(L.kv_b_proj.ref, H, dv, dn + dv, dn, m_out_lat.get(), dc, n, H * dc, m_attn_o.get(), s);
    // u = W^O [o_1; ...; o_H]
    project(L.o_proj, m_attn_o.get(), n, m_attn_out.get());
}

// DeepSeekMoE: shared experts, plus each token's top-k routed experts weighted by
// their gate scores. Reads m_xn, writes m_ffn_out and the routing of `moe_index`.
void CudaModel::moe(int layer, int moe_index, int n)
{
    const cudaStream_t s = m_stream.get();
    const ModelDims& d = m_dims;
    const DeviceLayer& L = m_layers[layer];
    const int k = d.top_k, E = d.n_routed;
    int* ids = m_route_ids.get() + static_cast<std::size_t>(moe_index) * m_max_step * k;
    float* weights = m_route_weights.get() + static_cast<std::size_t>(moe_index) * m_max_step * k;

    project(L.gate, m_xn.get(), n, m_gate_logits.get());
    moe_gate_topk(m_gate_logits.get(), n, d.gate, m_gate_probs.get(), ids, weights, s);

    if (L.shared.gate.empty())
        check_cuda(cudaMemsetAsync(m_ffn_out.get(), 0, sizeof(float) * n * d.hidden, s), "cudaMemsetAsync ffn_out");
    else
        ffn(L.shared, m_xn.get(), n, m_ffn_out.get());

    // Tokens sorted by expert, every expert's gate/up/down as one grouped launch.
    moe_permute_plan(ids, n, k, E, m_expert_offsets.get(), m_slot_of.get(), m_token_of_slot.get(), s);
    moe_gather_rows(m_xn.get(), m_token_of_slot.get(), n * k, d.hidden, m_x_perm.get(), s);
    matmul_grouped(L.experts.gate.ref, E, m_expert_offsets.get(), n, m_x_perm.get(), m_g_perm.get(), s);
    matmul_grouped(L.experts.up.ref, E, m_expert_offsets.get(), n, m_x_perm.get(), m_u_perm.get(), s);
    silu_mul(m_g_perm.get(), m_u_perm.get(), static_cast<long long>(n) * k * d.moe_width, s);
    matmul_grouped(L.experts.down.ref, E, m_expert_offsets.get(), n, m_g_perm.get(), m_y_perm.get(), s);
    moe_combine(m_y_perm.get(), m_slot_of.get(), weights, n, k, d.hidden, m_ffn_out.get(), true, s);
}

// The GPU's operations for the layer walk (backend/layer_walk.h) over the n rows
// of one launch, whose ids, positions, context lengths, cache rows and page
// tables are on the device.
struct CudaModel::StepOps {
    CudaModel& m;
    int n, max_ctx;
    const std::vector<int>& logit_rows;

    cudaStream_t s() const { return m.m_stream.get(); }
    long long hn() const { return static_cast<long long>(n) * m.m_dims.hidden; }
    void embed()
    {
        const ModelDims& d = m.m_dims;
        embedding_rows(m.m_embed.ref.data, m.m_embed.ref.type, d.hidden, m.m_tokens.get(), n, m.m_x.get(), s());
        rope_cos_sin(m.m_inv_freq.get(), d.dr / 2, d.rope_scale, m.m_positions.get(), n, m.m_cos.get(), m.m_sin.get(), s());
    }
    void input_norm(int l) { rmsnorm(m.m_x.get(), m.m_layers[l].input_norm.get(), n, m.m_dims.hidden, m.m_dims.eps, m.m_xn.get(), s()); }
    void post_norm(int l)
    {
        rmsnorm(m.m_x.get(), m.m_layers[l].post_attention_norm.get(), n, m.m_dims.hidden, m.m_dims.eps, m.m_xn.get(), s());
    }
    // The sub-blocks write their own buffers; add_out adds the one written last.
    const float* out = nullptr;
    void attention(int l)
    {
        m.attention(l, n, max_ctx);
        out = m.m_attn_out.get();
    }
    bool is_moe(int l) const { return m.m_layers[l].moe; }
    void moe(int l, int i)
    {
        m.moe(l, i, n);
        out = m.m_ffn_out.get();
    }
    void dense(int l)
    {
        m.ffn(m.m_layers[l].mlp, m.m_xn.get(), n, m.m_ffn_out.get());
        out = m.m_ffn_out.get();
    }
    void add_out() { axpy(m.m_x.get(), 1.0f, out, hn(), s()); }
    // Only the rows that sample leave the step: gathered, normalised, one lm_head product.
    void logits()
    {
        const ModelDims& d = m.m_dims;
        const int rows = static_cast<int>(logit_rows.size());
        if (rows == 0) return;
        for (int j = 0; j < rows; ++j)
            check_cuda(cudaMemcpyAsync(m.m_head_in.get() + static_cast<std::size_t>(j) * d.hidden,
                                       m.m_x.get() + static_cast<std::size_t>(logit_rows[j]) * d.hidden,
                                       sizeof(float) * d.hidden, cudaMemcpyDeviceToDevice, s()),
                       "gather lm_head rows");
        rmsnorm(m.m_head_in.get(), m.m_final_norm.get(), rows, d.hidden, d.eps, m.m_xn.get(), s());
        const std::size_t need = static_cast<std::size_t>(rows) * d.vocab;
        if (m.m_logits.size() < need) m.m_logits.resize(need, "logits");
        m.project(m.m_lm_head.empty() ? m.m_embed : m.m_lm_head, m.m_xn.get(), rows, m.m_logits.get());
    }
};

// One launch of at most m_max_step rows: their inputs up, the walk, routing and
// logits down into each item's buffers.
void CudaModel::launch(const MoelensCudaBatchItem* items, const std::vector<LaunchRow>& rows)
{
    const cudaStream_t s = m_stream.get();
    const int n = static_cast<int>(rows.size()), k = m_dims.top_k;
    int cols = 1, max_ctx = 1;
    for (const LaunchRow& r : rows) {
        const auto* seq = static_cast<const CudaSequence*>(items[r.item].sequence);
        cols = std::max(cols, static_cast<int>(seq->pages().size()));
        max_ctx = std::max(max_ctx, items[r.item].start_pos + r.t + 1);
    }
    // Ids, positions, causal context lengths (position + 1) and pool rows, then
    // every row's page table (its sequence's pages, padded).
    int* ids = m_host_ints.data();
    int* pos = ids + n;
    int* ctx = pos + n;
    int* dest = ctx + n;
    m_host_table.assign(static_cast<std::size_t>(n) * cols, 0);
    std::vector<int> logit_rows;
    for (int i = 0; i < n; ++i) {
        const MoelensCudaBatchItem& it = items[rows[i].item];
        const auto* seq = static_cast<const CudaSequence*>(it.sequence);
        const int p = it.start_pos + rows[i].t;
        ids[i] = it.tokens[rows[i].t];
        pos[i] = p;
        ctx[i] = p + 1;
        dest[i] = seq->row_of(p);
        std::copy(seq->pages().begin(), seq->pages().end(), m_host_table.begin() + static_cast<std::ptrdiff_t>(i) * cols);
        if (it.logits && rows[i].t == it.n_tokens - 1) logit_rows.push_back(i);
    }
    if (m_page_table.size() < m_host_table.size()) m_page_table.resize(m_host_table.size() * 2, "page tables");
    m_table_cols = cols;
    const auto up = [&](int* dst, const int* src, std::size_t count, const char* what) {
        check_cuda(cudaMemcpyAsync(dst, src, sizeof(int) * count, cudaMemcpyHostToDevice, s), what);
    };
    up(m_tokens.get(), ids, n, "upload tokens");
    up(m_positions.get(), pos, n, "upload positions");
    up(m_ctx_len.get(), ctx, n, "upload context lengths");
    up(m_dest_rows.get(), dest, n, "upload cache rows");
    up(m_page_table.get(), m_host_table.data(), m_host_table.size(), "upload page tables");
    // The staging buffers are reused by the next launch: the copies must have read them.
    check_cuda(cudaStreamSynchronize(s), "cudaStreamSynchronize (step inputs)");

    StepOps ops{*this, n, max_ctx, logit_rows};
    walk_decoder(ops, m_dims.layers);

    // device [moe layer][row][k] -> each item's [moe layer][its token][k], one copy
    // per layer and run of consecutive rows of one item.
    for (int b = 0; b < n;) {
        int e = b + 1;
        while (e < n && rows[e].item == rows[b].item) ++e;
        const MoelensCudaBatchItem& it = items[rows[b].item];
        if (it.route_ids)
            for (int ml = 0; ml < m_moe_layers; ++ml) {
                const std::size_t src = (static_cast<std::size_t>(ml) * m_max_step + b) * k;
                const std::size_t dst = (static_cast<std::size_t>(ml) * it.n_tokens + rows[b].t) * k;
                const std::size_t count = static_cast<std::size_t>(e - b) * k;
                check_cuda(cudaMemcpyAsync(it.route_ids + dst, m_route_ids.get() + src, sizeof(int) * count,
                                           cudaMemcpyDeviceToHost, s),
                           "download route ids");
                check_cuda(cudaMemcpyAsync(it.route_weights + dst, m_route_weights.get() + src, sizeof(float) * count,
                                           cudaMemcpyDeviceToHost, s),
                           "download route weights");
            }
        b = e;
    }
    for (std::size_t j = 0; j < logit_rows.size(); ++j)
        check_cuda(cudaMemcpyAsync(items[rows[logit_rows[j]].item].logits, m_logits.get() + j * m_dims.vocab,
                                   sizeof(float) * m_dims.vocab, cudaMemcpyDeviceToHost, s),
                   "download logits");
    // Kernel faults surface here at the latest; the message names the last call.
    check_cuda(cudaStreamSynchronize(s), "forward step (cudaStreamSynchronize)");
}

void CudaModel::forward_batch(const MoelensCudaBatchItem* items, int n_items)
{
    check_cuda(cudaSetDevice(m_device), "cudaSetDevice");
    for (int i = 0; i < n_items; ++i)
        static_cast<CudaSequence*>(items[i].sequence)->reserve(items[i].start_pos + items[i].n_tokens);
    // The rows in item order, cut into launches of at most m_max_step.
    std::vector<LaunchRow> rows;
    rows.reserve(static_cast<std::size_t>(m_max_step));
    for (int i = 0; i < n_items; ++i)
        for (int t = 0; t < items[i].n_tokens; ++t) {
            rows.push_back({i, t});
            if (static_cast<int>(rows.size()) == m_max_step) {
                launch(items, rows);
                rows.clear();
            }
        }
    if (!rows.empty()) launch(items, rows);
}

}  // namespace moelens::cuda
