// Finds and loads the CUDA plugin, asks it for devices, and explains the outcome.
#include <dlfcn.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

#include "device/cuda_plugin.h"
#include "moelens/devices.h"
#include "moelens/error.h"
#include "moelens/logging.h"

namespace moelens {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPluginFile = "libmoelens_cuda.so";

fs::path executable_dir()
{
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    return ec ? fs::path{} : exe.parent_path();
}

// Candidate locations, most specific first: an explicit override, next to the
// executable (build tree), and the installed plugin folder (<prefix>/lib/moelens).
std::vector<fs::path> plugin_candidates()
{
    std::vector<fs::path> out;
    if (const char* env = std::getenv("MOELENS_CUDA_PLUGIN"); env && *env) out.emplace_back(env);
    fs::path dir = executable_dir();
    if (!dir.empty()) {
        out.push_back(dir / kPluginFile);
        out.push_back(dir.parent_path() / "lib" / "moelens" / kPluginFile);
    }
    return out;
}

// The loaded plugin's table once the probe accepted it (version checked).
const MoelensCudaPlugin* g_plugin = nullptr;

DeviceReport probe()
{
    DeviceReport r;
    r.cpu_threads = std::max(1u, std::thread::hardware_concurrency());

    if (const char* off = std::getenv("MOELENS_DISABLE_CUDA"); off && *off && std::string(off) != "0") {
        r.reason = "CUDA disabled by MOELENS_DISABLE_CUDA";
        return r;
    }

    fs::path found;
    for (const auto& p : plugin_candidates()) {
        std::error_code ec;
        if (fs::exists(p, ec)) { found = p; break; }
    }
    if (found.empty()) {
        r.reason = "CUDA plugin not installed (libmoelens_cuda.so not found next to the executable "
                   "or in lib/moelens); using the CPU";
        return r;
    }
    r.plugin_path = found.string();

    // RTLD_LOCAL: the plugin's symbols stay private to it. The handle is kept for
    // the life of the process (plugins are never unloaded).
    void* handle = dlopen(found.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char* e = dlerror();
        r.reason = std::string("CUDA plugin ") + found.string() + " could not be loaded (" + (e ? e : "unknown") +
                   "); its libraries are probably missing; using the CPU";
        return r;
    }
    auto entry = reinterpret_cast<MoelensCudaEntryFn>(dlsym(handle, MOELENS_CUDA_ENTRY_SYMBOL));
    const MoelensCudaPlugin* plugin = entry ? entry() : nullptr;
    if (!plugin) {
        r.reason = std::string("CUDA plugin ") + found.string() + " has no entry point " + MOELENS_CUDA_ENTRY_SYMBOL +
                   "; using the CPU";
        return r;
    }
    if (plugin->abi_version != MOELENS_CUDA_PLUGIN_ABI_VERSION) {
        r.reason = "CUDA plugin ABI version " + std::to_string(plugin->abi_version) + " does not match the engine's " +
                   std::to_string(MOELENS_CUDA_PLUGIN_ABI_VERSION) + "; reinstall matching packages; using the CPU";
        return r;
    }

    std::array<char, 512> err{};
    int count = plugin->device_count(err.data(), err.size());
    if (count <= 0) {
        r.reason = count < 0 ? std::string("no usable GPU: ") + err.data() + "; using the CPU"
                             : std::string("no CUDA device present; using the CPU");
        return r;
    }
    for (int i = 0; i < count; ++i) {
        MoelensCudaDeviceInfo info{};
        if (plugin->device_info(i, &info, err.data(), err.size()) != 0) continue;
        r.gpus.push_back(GpuInfo{i, info.name, info.total_memory, info.free_memory, info.compute_major,
                                 info.compute_minor});
    }
    r.cuda_usable = !r.gpus.empty();
    if (r.cuda_usable) g_plugin = plugin;
    r.reason = r.cuda_usable ? std::to_string(r.gpus.size()) + " CUDA device(s) found (" + plugin->build_info + ")"
                             : std::string("CUDA devices did not answer; using the CPU");
    return r;
}

}  // namespace

std::string cuda_unusable_reason()
{
    std::string why = probe_devices().reason;
    if (const auto at = why.rfind("; using the CPU"); at != std::string::npos) why.erase(at);
    return why;
}

const MoelensCudaPlugin* cuda_plugin()
{
    return probe_devices().cuda_usable ? g_plugin : nullptr;
}

DeviceSpec parse_device(const std::string& text)
{
    if (text.empty() || text == "cpu") return {};
    if (text == "cuda") return {true, 0};
    if (text.rfind("cuda:", 0) == 0 && text.size() > 5 && text.size() <= 8 &&
        text.find_first_not_of("0123456789", 5) == std::string::npos)
        return {true, std::stoi(text.substr(5))};
    throw BackendError("unknown device '" + text + "': expected cpu, cuda or cuda:N");
}

const DeviceReport& probe_devices()
{
    static std::once_flag once;
    static DeviceReport report;
    std::call_once(once, [] {
        report = probe();
        engine_log().info("devices: {}", report.reason);
    });
    return report;
}

}  // namespace moelens
