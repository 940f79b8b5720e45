// The traffic figures of moelens/expert_traffic.h.
#include "moelens/expert_traffic.h"

#include <algorithm>
#include <numeric>

namespace moelens {

ExpertTraffic ExpertTraffic::empty(int devices, std::uint64_t row_bytes)
{
    ExpertTraffic t;
    const std::size_t D = static_cast<std::size_t>(devices);
    t.devices = devices;
    t.dispatch_rows.assign(D * D, 0);
    t.combine_rows.assign(D * D, 0);
    t.expert_rows.assign(D, 0);
    t.touched.assign(D + 1, 0);
    t.peak_activation_bytes.assign(D, 0);
    t.expert_seconds.assign(D, 0.0);
    t.row_bytes = row_bytes;
    return t;
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
