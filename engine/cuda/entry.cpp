// The plugin's single exported symbol: returns the versioned function table the
// engine checks before using anything else here (see backend/cuda_plugin_abi.h).
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>

#include "backend/cuda_plugin_abi.h"
#include "cuda/cuda_model.h"

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

void set_message(char* err, size_t len, const char* what)
{
    if (err && len) std::snprintf(err, len, "%s", what);
}

// Every exception stops at the functions below and becomes the caller's message:
// a C table cannot carry C++ exceptions across the dlopen() line.
void* model_create(const MoelensCudaModelDesc* desc, const MoelensCudaModelOptions* options, char* err, size_t len)
{
    try {
        return new moelens::cuda::CudaModel(*desc, *options);
    } catch (const std::exception& e) {
        set_message(err, len, e.what());
    } catch (...) {
        set_message(err, len, "unknown error while creating the CUDA model");
    }
    return nullptr;
}

void model_destroy(void* model)
{
    delete static_cast<moelens::cuda::CudaModel*>(model);
}

void* sequence_create(void* model, int32_t max_tokens, char* err, size_t len)
{
    try {
        return new moelens::cuda::CudaSequence(*static_cast<moelens::cuda::CudaModel*>(model), max_tokens);
    } catch (const std::exception& e) {
        set_message(err, len, e.what());
    }
    return nullptr;
}

// A sequence's pages go back to the model's pool, which a step on another
// thread may be growing: under the model's lock, as steps are.
void sequence_destroy(void* sequence)
{
    auto* s = static_cast<moelens::cuda::CudaSequence*>(sequence);
    if (!s) return;
    const std::lock_guard<std::mutex> lock(s->model().mutex());
    delete s;
}

int forward_batch(void* model, const MoelensCudaBatchItem* items, int32_t n_items, char* err, size_t len)
{
    try {
        auto* m = static_cast<moelens::cuda::CudaModel*>(model);
        const std::lock_guard<std::mutex> lock(m->mutex());
        m->forward_batch(items, n_items);
        return 0;
    } catch (const std::exception& e) {
        set_message(err, len, e.what());
    } catch (...) {
        set_message(err, len, "unknown error in the CUDA forward step");
    }
    return -1;
}

void cache_stats(void* model, void* sequence, MoelensCudaCacheStats* out)
{
    auto* m = static_cast<moelens::cuda::CudaModel*>(model);
    const std::lock_guard<std::mutex> lock(m->mutex());
    m->cache_stats(*static_cast<const moelens::cuda::CudaSequence*>(sequence), *out);
}

const MoelensCudaPlugin kPlugin = {
    MOELENS_CUDA_PLUGIN_ABI_VERSION,
    "CUDA runtime " MOELENS_STR(CUDART_VERSION) ", " MOELENS_CUDA_ARCHS,
    device_count,
    device_info,
    model_create,
    model_destroy,
    sequence_create,
    sequence_destroy,
    forward_batch,
    cache_stats,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const MoelensCudaPlugin* moelens_cuda_plugin_v3(void)
{
    return &kPlugin;
}
