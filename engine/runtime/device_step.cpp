// The step of runtime/step.h for a model on a GPU: the plugin runs the layer
// walk on the device for every item's rows at once (engine/cuda/cuda_forward.cpp),
// each sequence's cache being its pages of the device's pool. The rows' routing
// lands where run_step() leaves it, so the scheduler cannot tell the two apart.
#include <algorithm>

#include "runtime/stage_clock.h"
#include "runtime/step.h"

namespace moelens {

void run_device_step(const ModelImpl& m, StepWorkspace& w, std::span<const StepItem> items)
{
    const StageClock clock(w.times.total);
    const int k = w.top_k;
    std::vector<DeviceBatchItem> batch;
    batch.reserve(items.size());
    for (const StepItem& it : items) {
        SequenceState& seq = *it.seq;
        const int n = static_cast<int>(it.tokens.size());
        w.times.tokens += n;
        if (!seq.device) seq.device = std::make_unique<DeviceSequence>(*m.device, seq.max_tokens);
        DeviceSequence& dev = *seq.device;
        const std::size_t routes = static_cast<std::size_t>(w.n_moe) * n * std::max(1, k);
        if (dev.route_ids.size() < routes) {
            dev.route_ids.resize(routes);
            dev.route_weights.resize(routes);
        }
        batch.push_back({&dev, it.tokens, seq.position(), it.logits ? seq.logits.data() : nullptr, dev.route_ids.data(),
                         dev.route_weights.data()});
    }
    m.device->forward_batch(batch);
    int r0 = 0;
    for (const StepItem& it : items) {
        SequenceState& seq = *it.seq;
        const DeviceSequence& dev = *seq.device;
        const int n = static_cast<int>(it.tokens.size());
        // device [moe layer][token][k] -> workspace [row][moe layer][k]
        for (int i = 0; i < w.n_moe; ++i)
            for (int t = 0; t < n; ++t)
                for (int j = 0; j < k; ++j) {
                    const std::size_t src = (static_cast<std::size_t>(i) * n + t) * k + j;
                    const std::size_t dst = (static_cast<std::size_t>(r0 + t) * w.n_moe + i) * k + j;
                    w.route_ids[dst] = dev.route_ids[src];
                    w.route_weights[dst] = dev.route_weights[src];
                }
        seq.tokens.insert(seq.tokens.end(), it.tokens.begin(), it.tokens.end());
        seq.has_logits = it.logits;
        r0 += n;
    }
}

}  // namespace moelens
