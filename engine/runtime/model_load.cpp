// Loading a model folder: the checkpoint bound, quantised or copied as asked, its
// backend and, for --device cuda, its copy on the GPU.
#include <thread>

#include "model/model_info.h"
#include "runtime/model_impl.h"
#include "moelens/error.h"
#include "moelens/logging.h"

namespace moelens {

Model::Model(std::unique_ptr<ModelImpl> impl) : m_impl(std::move(impl)) {}
Model::~Model() = default;
const ModelInfo& Model::info() const { return m_impl->info; }
const ModelConfig& Model::config() const { return m_impl->config; }
unsigned Model::threads() const { return m_impl->threads; }

namespace {

void report(const LoadOptions& o, std::uint64_t done, std::uint64_t total, const char* stage)
{
    if (o.progress && !o.progress(LoadProgress{done, total, stage})) throw Cancelled();
}

}  // namespace

std::shared_ptr<const Model> load_model(const std::filesystem::path& dir, const LoadOptions& options)
{
    constexpr std::uint64_t kSteps = 4;
    report(options, 0, kSteps, "config");
    auto impl = std::make_unique<ModelImpl>();
    impl->config = parse_model_config(dir / "config.json");
    const ModelConfig& c = impl->config;
    report(options, 1, kSteps, "mapping");
    impl->checkpoint = std::make_unique<Checkpoint>(dir);
    report(options, 2, kSteps, "validating");
    check_weights(c, *impl->checkpoint);
    impl->info = make_model_info(dir, c, *impl->checkpoint);
    report(options, 3, kSteps, "binding");
    impl->weights = bind_weights(c, *impl->checkpoint);
    if (options.weights == WeightsFormat::int8)
        impl->quantized = QuantizedWeights::apply(impl->weights, *impl->checkpoint, dir, options);
    const bool on_gpu = parse_device(options.device).cuda;
    if (!on_gpu) {  // the GPU reads its own copy: the host's stays mapped
        impl->resident = ResidentWeights::apply(impl->weights, *impl->checkpoint, options);
        if (impl->resident) impl->info.resident_bytes = impl->resident->bytes();
    }

    impl->threads = options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency());
    impl->backend = make_cpu_backend(impl->threads);
    impl->rope = rope_frequencies(c);
    impl->route = route_params(c);
    impl->mla = MlaDims{c.num_attention_heads, c.kv_lora_rank, c.qk_nope_head_dim, c.qk_rope_head_dim, c.v_head_dim,
                        impl->rope.softmax_scale};
    if (on_gpu)
        impl->device = DeviceModel::load({c, impl->weights, impl->rope, impl->route, impl->quantized != nullptr}, options);
    impl->checkpoint->check_unchanged();  // cut short on disk while it was being read or copied
    engine_log().info("loaded {}: {} layers, {} params ({} active/token), {} on {} CPU threads", dir.string(),
                      c.num_hidden_layers, impl->info.total_params, impl->info.active_params_per_token,
                      impl->info.weights_dtype, impl->threads);
    report(options, kSteps, kSteps, "ready");
    return std::make_shared<const Model>(std::move(impl));
}

}  // namespace moelens
