// Expert placement and the traffic figures of moelens/expert_parallel.h.
#include "moelens/expert_parallel.h"

#include <algorithm>
#include <numeric>

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
    return p;
}

namespace {

// Rows between different devices of a [from * D + to] matrix.
std::uint64_t remote_rows(const std::vector<std::uint64_t>& rows, int devices)
{
    std::uint64_t n = 0;
    for (int a = 0; a < devices; ++a)
        for (int b = 0; b < devices; ++b)
            if (a != b) n += rows[static_cast<std::size_t>(a) * devices + b];
    return n;
}

}  // namespace

std::uint64_t ExpertTraffic::dispatch_bytes() const { return remote_rows(dispatch_rows, devices) * row_bytes; }
std::uint64_t ExpertTraffic::combine_bytes() const { return remote_rows(combine_rows, devices) * row_bytes; }

double ExpertTraffic::mean_devices_touched() const
{
    std::uint64_t n = 0, sum = 0;
    for (std::size_t i = 0; i < touched.size(); ++i) {
        n += touched[i];
        sum += touched[i] * i;
    }
    return n ? static_cast<double>(sum) / static_cast<double>(n) : 0.0;
}

double ExpertTraffic::imbalance() const
{
    if (expert_rows.empty()) return 1.0;
    const std::uint64_t total = std::accumulate(expert_rows.begin(), expert_rows.end(), std::uint64_t{0});
    if (total == 0) return 1.0;
    const double mean = static_cast<double>(total) / static_cast<double>(expert_rows.size());
    return static_cast<double>(*std::max_element(expert_rows.begin(), expert_rows.end())) / mean;
}

}  // namespace moelens
