// The plugin's single exported symbol: returns the versioned function table the
// engine checks before using anything else here (see backend/cuda_plugin_abi.h).
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>

#include "backend/cuda_plugin_abi.h"

#define MOELENS_STR2(x) #x
#define MOELENS_STR(x) MOELENS_STR2(x)

namespace {

void set_error(char* err, size_t len, const char* what, cudaError_t e)
{
    if (err && len) std::snprintf(err, len, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

int device_count(char* err, size_t err_len)
{
    // cudaGetDeviceCount leaves `n` untouched on error: check the return code.
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        set_error(err, err_len, "cudaGetDeviceCount", e);
        return -1;
    }
    return n;
}

int device_info(int index, MoelensCudaDeviceInfo* info, char* err, size_t err_len)
{
    cudaDeviceProp prop{};
    cudaError_t e = cudaGetDeviceProperties(&prop, index);
    if (e != cudaSuccess) {
        set_error(err, err_len, "cudaGetDeviceProperties", e);
        return -1;
    }
    std::snprintf(info->name, sizeof info->name, "%s", prop.name);
    info->compute_major = prop.major;
    info->compute_minor = prop.minor;
    info->total_memory = prop.totalGlobalMem;
    size_t free_b = 0, total_b = 0;
    if (cudaSetDevice(index) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
        info->free_memory = free_b;
    return 0;
}

const MoelensCudaPlugin kPlugin = {
    MOELENS_CUDA_PLUGIN_ABI_VERSION,
    "CUDA runtime " MOELENS_STR(CUDART_VERSION) ", " MOELENS_CUDA_ARCHS,
    device_count,
    device_info,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const MoelensCudaPlugin* moelens_cuda_plugin_v1(void)
{
    return &kPlugin;
}
