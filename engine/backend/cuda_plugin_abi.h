#pragma once
// The one door into libmoelens_cuda.so: a C function returning a versioned table.
// The engine dlopen()s the plugin, looks up MOELENS_CUDA_ENTRY_SYMBOL, and refuses
// (falling back to the CPU, with the reason logged) any table whose abi_version
// differs from the one it was built with. Plain C types only: the plugin links its
// own static CUDA runtime and must not share C++ ABI details with the host.
#include <stddef.h>
#include <stdint.h>

#define MOELENS_CUDA_PLUGIN_ABI_VERSION 1u
#define MOELENS_CUDA_ENTRY_SYMBOL "moelens_cuda_plugin_v1"

extern "C" {

struct MoelensCudaDeviceInfo {
    char name[256];
    uint64_t total_memory;
    uint64_t free_memory;
    int compute_major;
    int compute_minor;
};

struct MoelensCudaPlugin {
    uint32_t abi_version;      // MOELENS_CUDA_PLUGIN_ABI_VERSION
    const char* build_info;    // e.g. "CUDA runtime 13.0, sm_80 sm_89 sm_90"

    // Number of usable devices, or -1 with a message in err (no driver, no device,
    // driver too old). Never aborts.
    int (*device_count)(char* err, size_t err_len);

    // Fills *info for device `index`; returns 0 on success, -1 with a message.
    int (*device_info)(int index, MoelensCudaDeviceInfo* info, char* err, size_t err_len);
};

typedef const MoelensCudaPlugin* (*MoelensCudaEntryFn)(void);

}  // extern "C"
