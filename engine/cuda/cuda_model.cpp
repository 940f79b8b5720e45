// Uploading a described model to the device, the step's scratch, and sequences'
// caches. Everything is owned by RAII buffers, so a failure half-way (out of
// memory, a cancelled upload) frees what was already allocated.
#include "cuda/cuda_model.h"

#include <algorithm>
#include <string>

#include "cuda/kernels/cuda_error.h"

namespace moelens::cuda {
namespace {

ElemType elem_type_of(uint32_t dtype, const char* what)
{
    switch (dtype) {
    case MOELENS_CUDA_F32: return ElemType::f32;
    case MOELENS_CUDA_F16: return ElemType::f16;
    case MOELENS_CUDA_BF16: return ElemType::bf16;
    }
    throw CudaError(std::string(what) + ": unsupported dtype code " + std::to_string(dtype) +
                    " (f32, f16 and bf16 weights only; int8 weights stay on the CPU)");
}

std::size_t tensor_bytes(const MoelensCudaTensor& t)
{
    return t.data ? static_cast<std::size_t>(t.rows) * t.cols * elem_size(elem_type_of(t.dtype, "tensor")) : 0;
}

// Counts bytes as they go up and reports them; cancellation throws.
class Uploader {
public:
    Uploader(const MoelensCudaModelOptions& o, std::uint64_t total) : m_options(o), m_total(total) {}

    void matrix(const MoelensCudaTensor& t, DeviceMatrix& out, const char* what)
    {
        if (!t.data) return;
        const ElemType type = elem_type_of(t.dtype, what);
        const std::size_t bytes = tensor_bytes(t);
        out.buffer.resize(bytes, what);
        out.buffer.upload(static_cast<const std::byte*>(t.data), bytes);
        out.ref = WeightRef{out.buffer.get(), type, t.rows, t.cols};
        advance(bytes);
    }

    void vector(const float* v, int n, DeviceBuffer<float>& out, const char* what)
    {
        if (!v || n <= 0) return;
        out.resize(n, what);
        out.upload(v, n);
        advance(sizeof(float) * static_cast<std::size_t>(n));
    }

    // Every expert's matrix `part` (0 gate, 1 up, 2 down) into one buffer.
    void experts(const MoelensCudaFfn* e, int n, int part, DeviceMatrix& out)
    {
        auto pick = [part](const MoelensCudaFfn& f) -> const MoelensCudaTensor& {
            return part == 0 ? f.gate : part == 1 ? f.up : f.down;
        };
        const MoelensCudaTensor& first = pick(e[0]);
        const ElemType type = elem_type_of(first.dtype, "expert");
        const std::size_t one = tensor_bytes(first);
        out.buffer.resize(one * n, "routed experts");
        for (int i = 0; i < n; ++i) {
            const MoelensCudaTensor& t = pick(e[i]);
            if (t.dtype != first.dtype || t.rows != first.rows || t.cols != first.cols)
                throw CudaError("expert " + std::to_string(i) + " differs in dtype or shape from expert 0");
            out.buffer.upload(static_cast<const std::byte*>(t.data), one, one * i);
            advance(one);
        }
        out.ref = WeightRef{out.buffer.get(), type, first.rows, first.cols};
    }

private:
    void advance(std::uint64_t bytes)
    {
        m_done += bytes;
        if (m_options.progress && !m_options.progress(m_options.user, m_done, m_total)) throw CudaError("cancelled");
    }

    const MoelensCudaModelOptions& m_options;
    std::uint64_t m_total = 0;
    std::uint64_t m_done = 0;
};

std::uint64_t ffn_bytes(const MoelensCudaFfn& f) { return tensor_bytes(f.gate) + tensor_bytes(f.up) + tensor_bytes(f.down); }

}  // namespace

CudaStream::CudaStream(int device)
{
    check_cuda(cudaSetDevice(device), ("cudaSetDevice(" + std::to_string(device) + ")").c_str());
    check_cuda(cudaStreamCreateWithFlags(&m_stream, cudaStreamNonBlocking), "cudaStreamCreate");
}

CudaStream::~CudaStream()
{
    if (m_stream) cudaStreamDestroy(m_stream);
}

CudaModel::CudaModel(const MoelensCudaModelDesc& d, const MoelensCudaModelOptions& o)
    : m_device(o.device), m_precise(o.precise != 0), m_max_step(std::max(1, o.max_step_tokens)),
      m_stream(o.device)
{
    switch (o.cache_type) {
    case MOELENS_CUDA_CACHE_F32: m_cache_type = ElemType::f32; break;
    case MOELENS_CUDA_CACHE_BF16: m_cache_type = ElemType::bf16; break;
    case MOELENS_CUDA_CACHE_FP8: m_cache_type = ElemType::fp8_e4m3; break;
    default: throw CudaError("unknown latent cache type code " + std::to_string(o.cache_type));
    }
    int moe_width = 0, width_max = 0;
    for (int l = 0; l < d.layers; ++l) {
        const MoelensCudaLayer& L = d.layer[l];
        if (L.moe) {
            moe_width = L.experts[0].gate.rows;
            width_max = std::max({width_max, moe_width, L.shared.gate.data ? L.shared.gate.rows : 0});
        } else {
            width_max = std::max(width_max, L.mlp.gate.rows);
        }
    }
    m_dims = ModelDims{d.vocab, d.hidden, d.layers, d.heads, d.q_lora, d.kv_lora, d.dn, d.dr, d.dv, d.route.n_experts,
                       d.n_shared, d.route.top_k, moe_width, width_max, d.rms_norm_eps, d.softmax_scale, d.rope_scale,
                       d.route};
    check_cuda(cudaDeviceGetAttribute(&m_sms, cudaDevAttrMultiProcessorCount, m_device), "cudaDeviceGetAttribute");
    if (!m_precise) m_blas = Cublas::open(nullptr);  // without it, fast mode runs on our own kernels
    upload(d, o);
    allocate_scratch();
}

void CudaModel::upload(const MoelensCudaModelDesc& d, const MoelensCudaModelOptions& o)
{
    std::uint64_t total = tensor_bytes(d.embed) + tensor_bytes(d.lm_head);
    for (int l = 0; l < d.layers; ++l) {
        const MoelensCudaLayer& L = d.layer[l];
        total += tensor_bytes(L.q_proj) + tensor_bytes(L.q_a_proj) + tensor_bytes(L.q_b_proj) + tensor_bytes(L.kv_a_proj) +
                 tensor_bytes(L.kv_b_proj) + tensor_bytes(L.o_proj) + ffn_bytes(L.mlp) + tensor_bytes(L.gate) +
                 ffn_bytes(L.shared);
        if (L.moe)
            for (int e = 0; e < d.route.n_experts; ++e) total += ffn_bytes(L.experts[e]);
    }
    Uploader up(o, total);
    up.matrix(d.embed, m_embed, "embed_tokens");
    // A tied lm_head is the embedding: upload once.
    if (d.lm_head.data != d.embed.data) up.matrix(d.lm_head, m_lm_head, "lm_head");
    up.vector(d.final_norm, d.hidden, m_final_norm, "norm");
    up.vector(d.inv_freq, d.dr / 2, m_inv_freq, "rope inv_freq");
    m_layers.resize(d.layers);
    for (int l = 0; l < d.layers; ++l) {
        const MoelensCudaLayer& L = d.layer[l];
        DeviceLayer& D = m_layers[l];
        up.vector(L.input_norm, d.hidden, D.input_norm, "input_layernorm");
        up.vector(L.post_attention_norm, d.hidden, D.post_attention_norm, "post_attention_layernorm");
        up.matrix(L.q_proj, D.q_proj, "q_proj");
        up.matrix(L.q_a_proj, D.q_a_proj, "q_a_proj");
        up.vector(L.q_a_norm, d.q_lora, D.q_a_norm, "q_a_layernorm");
        up.matrix(L.q_b_proj, D.q_b_proj, "q_b_proj");
        up.matrix(L.kv_a_proj, D.kv_a_proj, "kv_a_proj_with_mqa");
        up.vector(L.kv_a_norm, d.kv_lora, D.kv_a_norm, "kv_a_layernorm");
        up.matrix(L.kv_b_proj, D.kv_b_proj, "kv_b_proj");
        up.matrix(L.o_proj, D.o_proj, "o_proj");
        D.moe = L.moe != 0;
        if (D.moe) {
            ++m_moe_layers;
            up.matrix(L.gate, D.gate, "mlp.gate");
            for (int part = 0; part < 3; ++part)
                up.experts(L.experts, d.route.n_experts, part, part == 0 ? D.experts.gate : part == 1 ? D.experts.up : D.experts.down);
            up.matrix(L.shared.gate, D.shared.gate, "shared_experts.gate_proj");
            up.matrix(L.shared.up, D.shared.up, "shared_experts.up_proj");
            up.matrix(L.shared.down, D.shared.down, "shared_experts.down_proj");
        } else {
            up.matrix(L.mlp.gate, D.mlp.gate, "mlp.gate_proj");
            up.matrix(L.mlp.up, D.mlp.up, "mlp.up_proj");
            up.matrix(L.mlp.down, D.mlp.down, "mlp.down_proj");
        }
    }
}

void CudaModel::allocate_scratch()
{
    const ModelDims& m = m_dims;
    const std::size_t T = static_cast<std::size_t>(m_max_step);
    const std::size_t k = std::max(1, m.top_k);
    const std::size_t H = m.heads;
    m_tokens.resize(T, "step tokens");
    m_positions.resize(T, "step positions");
    m_ctx_len.resize(T, "step context lengths");
    m_cos.resize(T * (m.dr / 2), "rope cos");
    m_sin.resize(T * (m.dr / 2), "rope sin");
    m_x.resize(T * m.hidden, "residual stream");
    m_xn.resize(T * m.hidden, "normalised input");
    m_attn_out.resize(T * m.hidden, "attention output");
    m_ffn_out.resize(T * m.hidden, "ffn output");
    m_q.resize(T * H * (m.dn + m.dr), "q");
    if (m.q_lora > 0) m_q_a.resize(T * m.q_lora, "q_a");
    m_kv_a.resize(T * (m.kv_lora + m.dr), "kv_a");
    m_q_lat.resize(T * H * m.kv_lora, "q_lat");
    m_out_lat.resize(T * H * m.kv_lora, "out_lat");
    m_attn_o.resize(T * H * m.dv, "attn_o");
    m_ffn_gate.resize(T * m.ffn_width_max, "ffn gate");
    m_ffn_up.resize(T * m.ffn_width_max, "ffn up");
    m_logits.resize(m.vocab, "logits");
    m_head_in.resize(T * m.hidden, "lm_head inputs");
    m_dest_rows.resize(T, "cache rows");
    if (m.n_routed > 0) {
        m_gate_logits.resize(T * m.n_routed, "router logits");
        m_gate_probs.resize(T * m.n_routed, "router probabilities");
        m_route_ids.resize(std::max(1, m_moe_layers) * T * k, "route ids");
        m_route_weights.resize(std::max(1, m_moe_layers) * T * k, "route weights");
        m_expert_offsets.resize(m.n_routed + 1, "expert offsets");
        m_slot_of.resize(T * k, "slot of entry");
        m_token_of_slot.resize(T * k, "token of slot");
        m_x_perm.resize(T * k * m.hidden, "permuted inputs");
        m_y_perm.resize(T * k * m.hidden, "permuted outputs");
        m_g_perm.resize(T * k * m.moe_width, "permuted gate");
        m_u_perm.resize(T * k * m.moe_width, "permuted up");
    }
    if (m_blas) m_bf16_in.resize(T * std::max({m.hidden, m.ffn_width_max, static_cast<int>(H) * m.dv, m.q_lora}), "bf16 inputs");
    m_host_ints.resize(4 * T);
}

int CudaModel::take_page()
{
    if (m_free_pages.empty()) grow_pool(std::max(16, 2 * m_pool_pages));
    const int p = m_free_pages.back();
    m_free_pages.pop_back();
    return p;
}

// Copies every layer's part into a larger pool; page ids stay valid.
void CudaModel::grow_pool(int pages)
{
    const ModelDims& d = m_dims;
    const int width = d.kv_lora + d.dr;
    const std::size_t row_bytes = elem_size(m_cache_type) * width;
    const int nblk = fp8_scale_blocks(width);
    const bool fp8 = m_cache_type == ElemType::fp8_e4m3;
    const std::size_t rows_new = static_cast<std::size_t>(pages) * kDevicePageRows;
    const std::size_t rows_old = static_cast<std::size_t>(m_pool_pages) * kDevicePageRows;
    DeviceBuffer<std::byte> rows(static_cast<std::size_t>(d.layers) * rows_new * row_bytes, "latent cache pool");
    DeviceBuffer<float> scales(fp8 ? static_cast<std::size_t>(d.layers) * rows_new * nblk : 0, "latent cache scales");
    for (int l = 0; l < d.layers && m_pool_pages > 0; ++l) {
        check_cuda(cudaMemcpy(rows.get() + l * rows_new * row_bytes, m_pool_rows.get() + l * rows_old * row_bytes,
                              rows_old * row_bytes, cudaMemcpyDeviceToDevice),
                   "latent cache pool growth: cudaMemcpy");
        if (fp8)
            check_cuda(cudaMemcpy(scales.get() + l * rows_new * nblk, m_pool_scales.get() + l * rows_old * nblk,
                                  sizeof(float) * rows_old * nblk, cudaMemcpyDeviceToDevice),
                       "latent cache pool growth: cudaMemcpy scales");
    }
    m_pool_rows = std::move(rows);
    m_pool_scales = std::move(scales);
    for (int p = pages - 1; p >= m_pool_pages; --p) m_free_pages.push_back(p);
    m_pool_pages = pages;
}

void CudaModel::cache_stats(const CudaSequence& seq, MoelensCudaCacheStats& out) const
{
    const int width = m_dims.kv_lora + m_dims.dr;
    out.page_rows = kDevicePageRows;
    out.pages_held = static_cast<int32_t>(seq.pages().size());
    out.pool_pages_free = static_cast<int32_t>(m_free_pages.size());
    out.pool_pages_used = m_pool_pages - out.pool_pages_free;
    out.pool_bytes = static_cast<uint64_t>(m_pool_pages) * kDevicePageRows * m_dims.layers * latent_row_bytes(m_cache_type, width);
}

LatentPages CudaModel::layer_pages(int layer)
{
    const ModelDims& d = m_dims;
    const int width = d.kv_lora + d.dr;
    const std::size_t rows = static_cast<std::size_t>(m_pool_pages) * kDevicePageRows;
    LatentPages p;
    p.data = m_pool_rows.get() + static_cast<std::size_t>(layer) * rows * elem_size(m_cache_type) * width;
    p.scales = m_cache_type == ElemType::fp8_e4m3 ? m_pool_scales.get() + static_cast<std::size_t>(layer) * rows * fp8_scale_blocks(width)
                                                  : nullptr;
    p.type = m_cache_type;
    p.page_rows = kDevicePageRows;
    p.row_width = width;
    return p;
}

CudaSequence::CudaSequence(CudaModel& model, int max_tokens) : m_model(model), m_max_tokens(max_tokens) {}

CudaSequence::~CudaSequence()
{
    for (int p : m_pages) m_model.give_page(p);
}

void CudaSequence::reserve(int tokens)
{
    if (tokens > m_max_tokens)
        throw CudaError("sequence needs " + std::to_string(tokens) + " positions, its limit is " + std::to_string(m_max_tokens));
    while (static_cast<int>(m_pages.size()) * kDevicePageRows < tokens) m_pages.push_back(m_model.take_page());
}

}  // namespace moelens::cuda
