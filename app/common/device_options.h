#pragma once
// The device flags shared by moelens-cli and moelens-bench:
//   --device cpu|cuda|cuda:N   where the model runs (cpu by default)
//   --gpu-mode fast|precise    bf16 GEMM inputs and cache, or f32 throughout
//   --gpu-cache auto|f32|bf16|fp8   latent cache element type on the GPU
//   --gpu-context N            tokens the memory plan reserves the cache for
//   --weights-memory auto|resident|mapped   CPU weights copied into large pages or file-mapped
// Header-only: app_common does not link the engine; its users do.
#include <set>
#include <string>

#include "args.h"
#include "moelens/error.h"
#include "moelens/model.h"

namespace moelens::cli {

inline const char* device_options_usage()
{
    return "[--device cpu|cuda[:N]] [--gpu-mode fast|precise] [--gpu-cache auto|f32|bf16|fp8] [--gpu-context N] "
           "[--weights-memory auto|resident|mapped]";
}

// Adds the flags' names to a command's valued options.
inline std::set<std::string> with_device_options(std::set<std::string> valued)
{
    valued.insert({"device", "gpu-mode", "gpu-cache", "gpu-context", "weights-memory"});
    return valued;
}

// Fails at once, with the probe's reason, when --device asks for a GPU that is
// not usable: a command can call this before expensive preparation.
inline void require_device(const Args& args)
{
    const std::string device = args.get("device").value_or("cpu");
    DeviceSpec spec;
    try {
        spec = parse_device(device);
    } catch (const BackendError& e) {
        throw UsageError(std::string("--device: ") + e.what());
    }
    if (!spec.cuda) return;
    const DeviceReport& r = probe_devices();
    if (!r.cuda_usable)
        throw BackendError("--device " + device + " requested but CUDA is not usable: " + cuda_unusable_reason());
    if (spec.index >= static_cast<int>(r.gpus.size()))
        throw BackendError("--device " + device + ": only " + std::to_string(r.gpus.size()) + " CUDA device(s) present");
}

inline void apply_device_options(const Args& args, LoadOptions& load)
{
    load.device = args.get("device").value_or("cpu");
    try {
        parse_device(load.device);
    } catch (const BackendError& e) {
        throw UsageError(std::string("--device: ") + e.what());
    }
    const std::string mode = args.get("gpu-mode").value_or("fast");
    if (mode != "fast" && mode != "precise") throw UsageError("--gpu-mode must be 'fast' or 'precise'");
    load.gpu.mode = mode == "precise" ? GpuMode::precise : GpuMode::fast;
    const std::string cache = args.get("gpu-cache").value_or("auto");
    if (cache == "auto")
        load.gpu.cache = GpuCache::automatic;
    else if (cache == "f32")
        load.gpu.cache = GpuCache::f32;
    else if (cache == "bf16")
        load.gpu.cache = GpuCache::bf16;
    else if (cache == "fp8")
        load.gpu.cache = GpuCache::fp8;
    else
        throw UsageError("--gpu-cache must be auto, f32, bf16 or fp8");
    const long long context = args.get_int("gpu-context", load.gpu.context);
    if (context < 1 || context > 1 << 20) throw UsageError("--gpu-context must be between 1 and 1048576");
    load.gpu.context = static_cast<int>(context);
    const std::string memory = args.get("weights-memory").value_or("auto");
    if (memory == "auto")
        load.memory = WeightsMemory::automatic;
    else if (memory == "resident")
        load.memory = WeightsMemory::resident;
    else if (memory == "mapped")
        load.memory = WeightsMemory::mapped;
    else
        throw UsageError("--weights-memory must be auto, resident or mapped");
}

}  // namespace moelens::cli
