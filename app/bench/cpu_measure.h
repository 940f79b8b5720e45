#pragma once
// Shared by the CPU benchmarks (membw, model): summaries of repeated timings and
// the machine baselines (read bandwidth, peak FMA rate) measured in the same run.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "moelens/cpu_speed.h"

namespace moelens::bench {

// Median and spread of repeated measurements of one quantity.
struct Summary {
    double median = 0.0;
    double min = 0.0;
    double max = 0.0;
    int reps = 0;
};

Summary summarize(std::vector<double> values);
// "23.9 (23.1-24.2, n=9)" with `digits` after the point.
std::string format_summary(const Summary& s, int digits);
nlohmann::json summary_json(const Summary& s);

// Read bandwidth in GB/s (1e9 bytes) over `reps` passes of `mb` MiB, after one
// untimed warm-up pass.
Summary measure_read_bandwidth(CpuProbe& probe, int mb, int reps);
// Peak f32 FMA rate in GFLOP/s, `reps` runs of about 0.2 s each.
Summary measure_fma_peak(CpuProbe& probe, int reps);

}  // namespace moelens::bench
