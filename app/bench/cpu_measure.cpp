#include "cpu_measure.h"

#include <algorithm>
#include <cstdio>

namespace moelens::bench {

Summary summarize(std::vector<double> values)
{
    Summary s;
    if (values.empty()) return s;
    std::sort(values.begin(), values.end());
    const std::size_t n = values.size();
    s.median = n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
    s.min = values.front();
    s.max = values.back();
    s.reps = static_cast<int>(n);
    return s;
}

std::string format_summary(const Summary& s, int digits)
{
    char buf[128];
    std::snprintf(buf, sizeof buf, "%.*f (%.*f-%.*f, n=%d)", digits, s.median, digits, s.min, digits, s.max, s.reps);
    return buf;
}

nlohmann::json summary_json(const Summary& s)
{
    return {{"median", s.median}, {"min", s.min}, {"max", s.max}, {"reps", s.reps}};
}

Summary measure_read_bandwidth(CpuProbe& probe, int mb, int reps)
{
    const std::size_t bytes = static_cast<std::size_t>(mb) << 20;
    probe.read_pass(bytes);
    std::vector<double> gbs;
    for (int i = 0; i < reps; ++i) gbs.push_back(static_cast<double>(bytes) / probe.read_pass(bytes) / 1e9);
    return summarize(gbs);
}

Summary measure_fma_peak(CpuProbe& probe, int reps)
{
    std::vector<double> g;
    for (int i = 0; i < reps; ++i) g.push_back(probe.fma_peak(0.2) / 1e9);
    return summarize(g);
}

}  // namespace moelens::bench
