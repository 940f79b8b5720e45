#pragma once
// Which compute devices this process can use, and why it uses the ones it does.
// The CUDA backend is a plugin (libmoelens_cuda.so) loaded only when it exists and
// a GPU answers; otherwise everything runs on the CPU and `reason` says why.
#include <cstdint>
#include <string>
#include <vector>

namespace moelens {

struct GpuInfo {
    int index = 0;
    std::string name;
    std::uint64_t total_memory = 0;  // bytes
    std::uint64_t free_memory = 0;   // bytes, at probe time
    int compute_major = 0;
    int compute_minor = 0;
};

struct DeviceReport {
    bool cuda_usable = false;     // plugin loaded and at least one GPU answered
    std::string plugin_path;      // where the plugin was found (empty if not found)
    std::string reason;           // human-readable: why CUDA is or is not used
    std::vector<GpuInfo> gpus;
    unsigned cpu_threads = 1;     // hardware threads available to the CPU backend
};

// Probes once per process (the result is cached; probing loads the plugin and
// touches the driver). Thread-safe.
const DeviceReport& probe_devices();

}  // namespace moelens
