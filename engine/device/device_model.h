#pragma once
// A loaded model's copy on a GPU, through the CUDA plugin's model table (ABI 3):
// the engine describes its bound weights, the plugin uploads them once and runs
// whole steps on the device, several sequences' rows at once. Each sequence of
// such a model owns a DeviceSequence (its pages of the device's latent cache).
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

class DeviceSequence;

// One sequence's part of a device step (see MoelensCudaBatchItem).
struct DeviceBatchItem {
    DeviceSequence* sequence = nullptr;
    std::span<const int> tokens;
    int start_pos = 0;
    float* logits = nullptr;       // [vocab] of the last token, or null
    int* route_ids = nullptr;      // [moe layers][tokens][top_k], or null
    float* route_weights = nullptr;
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

    // Runs one step over every item's rows together. Throws BackendError with the
    // plugin's message.
    void forward_batch(std::span<const DeviceBatchItem> items) const;

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

    void* handle() const { return m_handle; }
    MoelensCudaCacheStats cache_stats() const;

    // Host landing space for the routing of one call, grown once to the largest call.
    std::vector<int> route_ids;
    std::vector<float> route_weights;

private:
    const DeviceModel& m_model;
    void* m_handle = nullptr;
};

}  // namespace moelens
