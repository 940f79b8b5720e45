// One DeepSeek-V2 forward call on the GPU for n tokens of one sequence: the same
// steps as runtime/forward.cpp (read that first), with every token of a prompt
// chunk processed at once and the routed experts as grouped products over the
// tokens each expert received.
#include <algorithm>
#include <string>

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

// Multi-head latent attention for tokens at start_pos..; reads m_xn, writes m_attn_out.
void CudaModel::attention(CudaSequence& seq, int layer, int n, int start_pos)
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
    // [c^{KV} ; k^R] = W^{DKV} h; the cache keeps RMSNorm(c^{KV}) and RoPE(k^R)
    project(L.kv_a_proj, m_xn.get(), n, m_kv_a.get());
    rmsnorm_rows(m_kv_a.get(), row, L.kv_a_norm.get(), n, dc, d.eps, m_kv_a.get(), row, s);
    rope_interleaved(m_kv_a.get() + dc, n, row, 1, dr, dr, m_cos.get(), m_sin.get(), s);
    const LatentPages pages = seq.layer_pages(layer);
    latent_rows_store(m_kv_a.get(), n, m_positions.get(), pages, s);  // identity pages: row = position
    rope_interleaved(m_q.get() + dn, n, H * q_stride, H, q_stride, dr, m_cos.get(), m_sin.get(), s);

    // Absorb W^{UK} into the query, attend over the latents, absorb W^{UV} after.
    matvec_transposed_heads(L.kv_b_proj.ref, H, dn, dn + dv, m_q.get(), q_stride, n, H * q_stride, m_q_lat.get(), s);
    MlaDecodeShape shape{n, H, dc, dr, d.softmax_scale, start_pos + n, seq.capacity() / kDevicePageRows,
                         q_stride, H * q_stride, 0};
    const std::size_t need = mla_decode_workspace_floats(shape, m_sms);
    if (m_attn_work.size() < need) m_attn_work.resize(need * 2, "MLA attention workspace");
    attention_mla_decode(m_q_lat.get(), m_q.get() + dn, pages, seq.page_table(), m_ctx_len.get(), shape,
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

void CudaModel::forward_chunk(CudaSequence& seq, const int32_t* tokens, int n, int start_pos, bool want_logits)
{
    const cudaStream_t s = m_stream.get();
    const ModelDims& d = m_dims;
    seq.reserve(start_pos + n);

    // Token ids, positions and causal context lengths (position + 1) for the chunk.
    check_cuda(cudaMemcpyAsync(m_tokens.get(), tokens, sizeof(int) * n, cudaMemcpyHostToDevice, s), "upload tokens");
    for (int t = 0; t < n; ++t) m_host_ints[t] = start_pos + t;
    check_cuda(cudaMemcpyAsync(m_positions.get(), m_host_ints.data(), sizeof(int) * n, cudaMemcpyHostToDevice, s),
               "upload positions");
    for (int t = 0; t < n; ++t) m_host_ints[t] = start_pos + t + 1;
    check_cuda(cudaMemcpyAsync(m_ctx_len.get(), m_host_ints.data(), sizeof(int) * n, cudaMemcpyHostToDevice, s),
               "upload context lengths");
    // m_host_ints is reused by the next chunk: the copies above must have read it.
    check_cuda(cudaStreamSynchronize(s), "cudaStreamSynchronize (step inputs)");

    embedding_rows(m_embed.ref.data, m_embed.ref.type, d.hidden, m_tokens.get(), n, m_x.get(), s);
    rope_cos_sin(m_inv_freq.get(), d.dr / 2, d.rope_scale, m_positions.get(), n, m_cos.get(), m_sin.get(), s);
    int moe_index = 0;
    const long long hn = static_cast<long long>(n) * d.hidden;
    for (int l = 0; l < d.layers; ++l) {
        const DeviceLayer& L = m_layers[l];
        // h += MLA(RMSNorm(h))
        rmsnorm(m_x.get(), L.input_norm.get(), n, d.hidden, d.eps, m_xn.get(), s);
        attention(seq, l, n, start_pos);
        axpy(m_x.get(), 1.0f, m_attn_out.get(), hn, s);
        // h += FFN(RMSNorm(h)): dense for the first layers, DeepSeekMoE after
        rmsnorm(m_x.get(), L.post_attention_norm.get(), n, d.hidden, d.eps, m_xn.get(), s);
        if (L.moe)
            moe(l, moe_index++, n);
        else
            ffn(L.mlp, m_xn.get(), n, m_ffn_out.get());
        axpy(m_x.get(), 1.0f, m_ffn_out.get(), hn, s);
    }
    if (want_logits) {
        // Only the last token's logits leave the step.
        const float* last = m_x.get() + static_cast<std::size_t>(n - 1) * d.hidden;
        rmsnorm(last, m_final_norm.get(), 1, d.hidden, d.eps, m_xn.get(), s);
        project(m_lm_head.empty() ? m_embed : m_lm_head, m_xn.get(), 1, m_logits.get());
    }
}

void CudaModel::forward(CudaSequence& seq, const MoelensCudaStep& step)
{
    check_cuda(cudaSetDevice(m_device), "cudaSetDevice");
    const cudaStream_t s = m_stream.get();
    const int k = m_dims.top_k;
    for (int done = 0; done < step.n_tokens;) {
        const int n = std::min(m_max_step, step.n_tokens - done);
        const bool last = done + n == step.n_tokens;
        forward_chunk(seq, step.tokens + done, n, step.start_pos + done, last && step.logits);
        if (step.route_ids && m_moe_layers > 0) {
            // device [moe layer][chunk token][k] -> host [moe layer][step token][k]
            for (int ml = 0; ml < m_moe_layers; ++ml) {
                const std::size_t src = static_cast<std::size_t>(ml) * m_max_step * k;
                const std::size_t dst = (static_cast<std::size_t>(ml) * step.n_tokens + done) * k;
                check_cuda(cudaMemcpyAsync(step.route_ids + dst, m_route_ids.get() + src, sizeof(int) * n * k,
                                           cudaMemcpyDeviceToHost, s),
                           "download route ids");
                check_cuda(cudaMemcpyAsync(step.route_weights + dst, m_route_weights.get() + src, sizeof(float) * n * k,
                                           cudaMemcpyDeviceToHost, s),
                           "download route weights");
            }
        }
        if (last && step.logits)
            check_cuda(cudaMemcpyAsync(step.logits, m_logits.get(), sizeof(float) * m_dims.vocab, cudaMemcpyDeviceToHost, s),
                       "download logits");
        // Kernel faults surface here at the latest; the message names the last call.
        check_cuda(cudaStreamSynchronize(s), "forward step (cudaStreamSynchronize)");
        done += n;
    }
}

}  // namespace moelens::cuda
