// moelens-cli devices: which compute devices the engine would use, and why.
#include <cstdio>

#include "args.h"
#include "commands.h"
#include "moelens/devices.h"

namespace moelens::cli {
namespace {

int run_devices(const std::vector<std::string>& argv)
{
    Args args(argv, {}, {});
    const DeviceReport& r = probe_devices();
    std::printf("cpu: %u hardware threads\n", r.cpu_threads);
    std::printf("cuda: %s\n", r.cuda_usable ? "yes" : "no");
    if (!r.plugin_path.empty()) std::printf("cuda plugin: %s\n", r.plugin_path.c_str());
    std::printf("reason: %s\n", r.reason.c_str());
    for (const GpuInfo& g : r.gpus)
        std::printf("gpu %d: %s, sm_%d%d, %.1f GiB (%.1f GiB free)\n", g.index, g.name.c_str(), g.compute_major,
                    g.compute_minor, g.total_memory / 1073741824.0, g.free_memory / 1073741824.0);
    return 0;
}

}  // namespace

const Command kDevicesCommand = {"devices", "", "list the CPU and CUDA devices the engine can use, and why", run_devices};

}  // namespace moelens::cli
