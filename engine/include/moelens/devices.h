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

// Where a model runs: "cpu" (default), "cuda" (= cuda:0) or "cuda:N".
struct DeviceSpec {
    bool cuda = false;
    int index = 0;
};
// Throws BackendError for anything else, naming the accepted forms.
DeviceSpec parse_device(const std::string& text);

// How a model runs on a GPU (ignored on the CPU).
enum class GpuMode {
    fast,     // bf16 GEMM inputs for prompt chunks (cuBLAS), bf16 latent cache: the default
    precise,  // f32 activations and accumulation everywhere, f32 cache: agrees with the CPU to 1e-3
};
enum class GpuCache { automatic, f32, bf16, fp8 };  // automatic: f32 when precise, else bf16

struct GpuOptions {
    GpuMode mode = GpuMode::fast;
    GpuCache cache = GpuCache::automatic;
    int context = 4096;         // tokens per sequence the memory plan reserves the cache for
    int step_tokens = 512;      // prompt tokens per forward call on the device
};

// Probes once per process (the result is cached; probing loads the plugin and
// touches the driver). Thread-safe.
const DeviceReport& probe_devices();

// The probe's reason without its "; using the CPU" ending, for messages where an
// explicit --device cuda request is refused (nothing falls back there).
std::string cuda_unusable_reason();

}  // namespace moelens
