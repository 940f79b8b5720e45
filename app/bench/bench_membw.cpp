// moelens-bench membw: the machine's read bandwidth with T threads (each reading
// its own part of a buffer much larger than the caches), and the peak f32 FMA
// rate of the same threads: the two limits the model benchmark is held against.
#include <cstdio>

#include "args.h"
#include "commands.h"
#include "cpu_measure.h"

namespace moelens::bench {
namespace {

int run_membw(const std::vector<std::string>& argv)
{
    const cli::Args args(argv, {"threads", "mb", "reps"}, {"json"});
    const long long threads = args.get_int("threads", 0);
    const long long mb = args.get_int("mb", 1024);
    const long long reps = args.get_int("reps", 9);
    if (threads < 0 || threads > 1024) throw cli::UsageError("--threads must be 0 (all) .. 1024");
    if (mb < 64 || mb > (1 << 20)) throw cli::UsageError("--mb must be 64 .. 1048576 (well above the caches)");
    if (reps < 1 || reps > 1000) throw cli::UsageError("--reps must be 1 .. 1000");

    CpuProbe probe(static_cast<unsigned>(threads));
    const Summary bw = measure_read_bandwidth(probe, static_cast<int>(mb), static_cast<int>(reps));
    const Summary fma = measure_fma_peak(probe, static_cast<int>(reps < 5 ? reps : 5));
    if (args.flag("json")) {
        const nlohmann::json j = {{"threads", probe.threads()},
                                  {"buffer_mib", mb},
                                  {"kernels", cpu_kernel_level()},
                                  {"cpu_features", cpu_feature_list()},
                                  {"read_gb_per_s", summary_json(bw)},
                                  {"fma_peak_gflop_per_s", summary_json(fma)}};
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("threads            %u (kernels %s; %s)\n", probe.threads(), cpu_kernel_level().c_str(),
                cpu_feature_list().c_str());
    std::printf("read bandwidth     %s GB/s over %lld MiB\n", format_summary(bw, 2).c_str(), mb);
    std::printf("peak f32 FMA       %s GFLOP/s\n", format_summary(fma, 1).c_str());
    std::printf("(median (min-max, n=repetitions))\n");
    return 0;
}

}  // namespace

const Command kMembwCommand{"membw", "[--threads T] [--mb N] [--reps R] [--json]",
                            "read bandwidth and peak f32 FMA rate of T threads (the limits for `model`)", run_membw};

}  // namespace moelens::bench
