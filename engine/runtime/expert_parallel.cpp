// Expert placement and the traffic figures of moelens/expert_parallel.h.
#include "moelens/expert_parallel.h"


#include "moelens/error.h"

namespace moelens {

ExpertPlacement place_experts(const ModelInfo& info, int devices)
{
    const ModelConfig& c = info.config;
    const int E = c.n_routed_experts;
    if (E == 0) throw Error("virtual devices need a MoE model; this one is dense");
    if (devices < 1 || devices > E)
        throw Error("virtual devices " + std::to_string(devices) + " is outside 1.." + std::to_string(E) +
                    " (at least one routed expert per device)");
    ExpertPlacement p;
    p.devices = devices;
    p.n_experts = E;
    p.device_of.resize(static_cast<std::size_t>(E));
    const bool grouped = c.topk_method == TopkMethod::group_limited_greedy && c.n_group > 1;
    if (grouped && devices <= c.n_group) {
        // The paper's layout: a group is a device's share; with fewer devices than
        // groups, each device holds several whole groups.
        const int per_group = E / c.n_group;
        for (int e = 0; e < E; ++e) p.device_of[static_cast<std::size_t>(e)] = (e / per_group) % devices;
        p.device_limited = true;
    } else {
        // Contiguous blocks. A group-limited model's groups then split over
        // devices, and its device limit no longer bounds the devices a token touches.
        for (int e = 0; e < E; ++e) p.device_of[static_cast<std::size_t>(e)] = static_cast<int>(static_cast<long long>(e) * devices / E);
    }
    const std::uint64_t per_expert = 3ull * c.hidden_size * c.moe_intermediate_size * info.moe_layers.size();
    p.replicated_params = info.total_params - per_expert * static_cast<std::uint64_t>(E);
    p.params.assign(static_cast<std::size_t>(devices), p.replicated_params);
    for (int e = 0; e < E; ++e) p.params[static_cast<std::size_t>(p.device(e))] += per_expert;
    // As the checkpoint stores them (a synthetic model has no files: 2 bytes, BF16).
    const double bytes_per_param = info.bytes_on_disk && info.total_params
                                       ? static_cast<double>(info.bytes_on_disk) / static_cast<double>(info.total_params)
                                       : 2.0;
    for (std::uint64_t n : p.params) p.weight_bytes.push_back(static_cast<std::uint64_t>(static_cast<double>(n) * bytes_per_param));
    return p;
}

}  // namespace moelens
