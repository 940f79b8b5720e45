#pragma once
// A loaded model's copy on a GPU, through the CUDA plugin's model table (ABI v2):
// the engine describes its bound weights, the plugin uploads them once and runs
// whole forward steps on the device. Sessions of such a model each own a
// DeviceSequence (their latent cache in device memory).
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "device/cuda_plugin.h"
#include "model/rope_table.h"
#include "model/weights.h"
#include "moelens/model.h"

namespace moelens {

// What the device model uploads: the bound weights and the per-model constants.
struct DeviceModelSource {
    const ModelConfig& config;
    const ModelWeights& weights;
    const RopeFrequencies& rope;
    const RouteParams& route;
    bool quantized = false;  // int8 weights: refused (the GPU takes f32, f16 and bf16)
};

class DeviceModel {
public:
    ~DeviceModel();
    DeviceModel(const DeviceModel&) = delete;
    DeviceModel& operator=(const DeviceModel&) = delete;

    // Plans memory against the GPU's free memory, then uploads (reporting
    // progress as stage "uploading"). Throws BackendError naming the reason
    // (no plugin, no such GPU, does not fit, int8 weights, a CUDA error).
    static std::unique_ptr<DeviceModel> load(const DeviceModelSource& m, const LoadOptions& options);

    const MoelensCudaPlugin& plugin() const { return *m_plugin; }
    void* handle() const { return m_handle; }
    const std::string& name() const { return m_name; }  // e.g. "cuda:0 (NVIDIA H200)"
    bool precise() const { return m_precise; }
    int cache_element_bytes() const { return m_cache_element_bytes; }  // of the device's latent cache

private:
    DeviceModel() = default;
    const MoelensCudaPlugin* m_plugin = nullptr;
    void* m_handle = nullptr;
    std::string m_name;
    bool m_precise = false;
    int m_cache_element_bytes = 4;
};

// One sequence's state on the device.
class DeviceSequence {
public:
    DeviceSequence(const DeviceModel& model, int max_tokens);
    ~DeviceSequence();
    DeviceSequence(const DeviceSequence&) = delete;
    DeviceSequence& operator=(const DeviceSequence&) = delete;

    // Feeds tokens at positions start_pos...; logits [vocab] of the last token
    // (may be null); route_ids / route_weights, when given, receive
    // [moe layers][tokens][top_k]. Throws BackendError with the plugin's message.
    void forward(std::span<const int> tokens, int start_pos, float* logits, int* route_ids, float* route_weights);

    // Host landing space for the routing of one call, grown once to the largest call.
    std::vector<int> route_ids;
    std::vector<float> route_weights;

private:
    const DeviceModel& m_model;
    void* m_handle = nullptr;
};

}  // namespace moelens
