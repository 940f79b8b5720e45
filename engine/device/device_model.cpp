#include "device/device_model.h"

#include <array>

#include "device/device_memory_plan.h"
#include "moelens/error.h"
#include "moelens/logging.h"

namespace moelens {
namespace {

MoelensCudaTensor tensor(const WeightView& w)
{
    if (w.empty()) return {nullptr, 0, 0, 0};
    uint32_t code = MOELENS_CUDA_F32;
    switch (w.dtype) {
    case DType::F32: code = MOELENS_CUDA_F32; break;
    case DType::F16: code = MOELENS_CUDA_F16; break;
    case DType::BF16: code = MOELENS_CUDA_BF16; break;
    default:
        throw BackendError("a " + std::string(dtype_name(w.dtype)) +
                           " weight cannot go to the GPU (f32, f16 and bf16 only; load int8 weights on the CPU)");
    }
    return {w.data, code, w.rows, w.cols};
}

MoelensCudaFfn ffn(const FfnWeights& f) { return {tensor(f.gate), tensor(f.up), tensor(f.down)}; }

int bytes_per_param(const DeviceModelSource& m)
{
    return m.weights.embed.dtype == DType::F32 ? 4 : 2;
}

struct UploadProgress {
    const LoadOptions* options;
    bool cancelled = false;
};

int report_upload(void* user, uint64_t done, uint64_t total)
{
    auto* p = static_cast<UploadProgress*>(user);
    if (p->options->progress && !p->options->progress(LoadProgress{done, total, "uploading"})) {
        p->cancelled = true;
        return 0;
    }
    return 1;
}

}  // namespace

std::unique_ptr<DeviceModel> DeviceModel::load(const DeviceModelSource& m, const LoadOptions& options)
{
    const DeviceSpec spec = parse_device(options.device);
    const std::string device = "cuda:" + std::to_string(spec.index);
    const MoelensCudaPlugin* plugin = cuda_plugin();
    if (!plugin)
        throw BackendError("--device " + options.device + " requested but CUDA is not usable: " + cuda_unusable_reason());
    const DeviceReport& report = probe_devices();
    if (spec.index >= static_cast<int>(report.gpus.size()))
        throw BackendError("--device " + options.device + ": only " + std::to_string(report.gpus.size()) +
                           " CUDA device(s) present");
    if (m.quantized)
        throw BackendError("int8 weights run on the CPU only; load with --weights stored for " + device);
    const GpuInfo& gpu = report.gpus[spec.index];
    const ModelConfig& c = m.config;
    const bool precise = options.gpu.mode == GpuMode::precise;
    GpuCache cache = options.gpu.cache;
    if (cache == GpuCache::automatic) cache = precise ? GpuCache::f32 : GpuCache::bf16;

    // Will it fit? Refuse before uploading anything.
    DeviceMemoryRequest req;
    req.weight_bytes = model_weight_bytes(c, bytes_per_param(m));
    req.context_tokens = options.gpu.context;
    req.sequences = 1;
    req.step_tokens = options.gpu.step_tokens;
    req.cache = cache == GpuCache::f32 ? DeviceCacheType::f32 : cache == GpuCache::fp8 ? DeviceCacheType::fp8_e4m3 : DeviceCacheType::bf16;
    req.mode = precise ? DeviceMode::precise : DeviceMode::fast;
    const DeviceMemoryPlan plan = plan_device_memory(c, req);
    check_device_memory(plan, req, gpu.free_memory, device + " (" + gpu.name + ")");
    engine_log().info("{}: memory plan {} (weights {}, cache {}, workspace {}) of {} free", device,
                      format_bytes(plan.total()), format_bytes(plan.weights), format_bytes(plan.latent_cache),
                      format_bytes(plan.workspace), format_bytes(gpu.free_memory));

    // The descriptor points into the mapped checkpoint; it lives for this call only.
    const ModelWeights& w = m.weights;
    std::vector<std::vector<MoelensCudaFfn>> experts(c.num_hidden_layers);
    std::vector<MoelensCudaLayer> layers(c.num_hidden_layers);
    for (int l = 0; l < c.num_hidden_layers; ++l) {
        const LayerWeights& L = w.layers[l];
        MoelensCudaLayer& D = layers[l];
        D.input_norm = L.input_norm.data();
        D.post_attention_norm = L.post_attention_norm.data();
        D.q_proj = tensor(L.q_proj);
        D.q_a_proj = tensor(L.q_a_proj);
        D.q_a_norm = L.q_a_norm.empty() ? nullptr : L.q_a_norm.data();
        D.q_b_proj = tensor(L.q_b_proj);
        D.kv_a_proj = tensor(L.kv_a_proj);
        D.kv_a_norm = L.kv_a_norm.data();
        D.kv_b_proj = tensor(L.kv_b_proj);
        D.o_proj = tensor(L.o_proj);
        D.moe = L.moe ? 1 : 0;
        if (L.moe) {
            for (const auto& e : L.experts) experts[l].push_back(ffn(e));
            D.experts = experts[l].data();
            D.gate = tensor(L.gate);
            D.shared = ffn(L.shared);
        } else {
            D.mlp = ffn(L.mlp);
        }
    }
    const RouteParams& r = m.route;
    MoelensCudaModelDesc desc{};
    desc.vocab = c.vocab_size;
    desc.hidden = c.hidden_size;
    desc.layers = c.num_hidden_layers;
    desc.heads = c.num_attention_heads;
    desc.q_lora = c.q_lora_rank;
    desc.kv_lora = c.kv_lora_rank;
    desc.dn = c.qk_nope_head_dim;
    desc.dr = c.qk_rope_head_dim;
    desc.dv = c.v_head_dim;
    desc.n_shared = c.n_shared_experts;
    desc.route = r;
    desc.rms_norm_eps = static_cast<float>(c.rms_norm_eps);
    desc.softmax_scale = m.rope.softmax_scale;
    desc.rope_scale = m.rope.cos_sin_scale;
    desc.inv_freq = m.rope.inv_freq.data();
    desc.embed = tensor(w.embed);
    desc.lm_head = tensor(w.lm_head);
    desc.final_norm = w.final_norm.data();
    desc.layer = layers.data();

    UploadProgress progress{&options};
    MoelensCudaModelOptions o{};
    o.device = spec.index;
    o.precise = precise ? 1 : 0;
    o.cache_type = cache == GpuCache::f32 ? MOELENS_CUDA_CACHE_F32 : cache == GpuCache::fp8 ? MOELENS_CUDA_CACHE_FP8 : MOELENS_CUDA_CACHE_BF16;
    o.max_step_tokens = options.gpu.step_tokens;
    o.progress = report_upload;
    o.user = &progress;

    std::array<char, 1024> err{};
    void* handle = plugin->model_create(&desc, &o, err.data(), err.size());
    if (progress.cancelled) throw Cancelled();
    if (!handle) throw BackendError("loading the model onto " + device + " failed: " + err.data());
    std::unique_ptr<DeviceModel> dm(new DeviceModel);
    dm->m_plugin = plugin;
    dm->m_handle = handle;
    dm->m_name = device + " (" + gpu.name + ")";
    dm->m_precise = precise;
    dm->m_cache_element_bytes = cache == GpuCache::f32 ? 4 : cache == GpuCache::fp8 ? 1 : 2;
    engine_log().info("model on {} in {} mode, {} latent cache", dm->m_name, precise ? "precise" : "fast",
                      device_cache_type_name(req.cache));
    return dm;
}

DeviceModel::~DeviceModel()
{
    if (m_handle) m_plugin->model_destroy(m_handle);
}

DeviceSequence::DeviceSequence(const DeviceModel& model, int max_tokens) : m_model(model)
{
    std::array<char, 1024> err{};
    m_handle = model.plugin().sequence_create(model.handle(), max_tokens, err.data(), err.size());
    if (!m_handle) throw BackendError("creating a sequence on " + model.name() + " failed: " + err.data());
}

DeviceSequence::~DeviceSequence()
{
    if (m_handle) m_model.plugin().sequence_destroy(m_handle);
}

MoelensCudaCacheStats DeviceSequence::cache_stats() const
{
    MoelensCudaCacheStats s{};
    m_model.plugin().cache_stats(m_model.handle(), m_handle, &s);
    return s;
}

void DeviceModel::forward_batch(std::span<const DeviceBatchItem> items) const
{
    static_assert(sizeof(int) == sizeof(int32_t));
    std::vector<MoelensCudaBatchItem> c(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) {
        const DeviceBatchItem& it = items[i];
        c[i] = {it.sequence->handle(), it.tokens.data(), static_cast<int32_t>(it.tokens.size()), it.start_pos, it.logits,
                it.route_ids, it.route_weights};
    }
    std::array<char, 1024> err{};
    if (m_plugin->forward_batch(m_handle, c.data(), static_cast<int32_t>(c.size()), err.data(), err.size()) != 0)
        throw BackendError("forward step on " + m_name + " failed: " + err.data());
}

}  // namespace moelens
