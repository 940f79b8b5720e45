#pragma once
// Shared by the gpu suites: the skip rule, random data, device copies and an
// element-wise comparison that names the first offender and the largest error.
#include <QTest>

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "cuda/kernels/device_buffer.h"

namespace gpu_test {

// Empty when a CUDA device can run our kernels, else why not (for QSKIP).
// A build without a GPU (CI) skips every gpu suite through this.
inline std::string why_no_gpu()
{
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) return std::string("no usable CUDA device: ") + cudaGetErrorString(e);
    if (n == 0) return "no CUDA device present";
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) return "cudaGetDeviceProperties failed";
    if (p.major < 8) return "device 0 is sm_" + std::to_string(p.major * 10 + p.minor) + "; the kernels need sm_80 or newer";
    return {};
}

inline int sm_count()
{
    int dev = 0, n = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev);
    return n;
}

inline std::vector<float> random_vec(std::size_t n, std::mt19937& rng, float scale = 1.0f)
{
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

template <class T>
moelens::cuda::DeviceBuffer<T> to_device(const std::vector<T>& v)
{
    moelens::cuda::DeviceBuffer<T> d(v.size(), "test input");
    if (!v.empty()) d.upload(v.data(), v.size());
    return d;
}

template <class T>
std::vector<T> to_host(const moelens::cuda::DeviceBuffer<T>& d, std::size_t n)
{
    moelens::cuda::check_cuda(cudaDeviceSynchronize(), "test: cudaDeviceSynchronize");
    std::vector<T> v(n);
    if (n) d.download(v.data(), n);
    return v;
}

// |got - want| <= atol + rtol * |want| everywhere; on failure the message names
// the first offender and the largest absolute error.
inline bool all_close(const std::vector<float>& got, const std::vector<float>& want, double atol, double rtol,
                      const std::string& what, std::string* msg)
{
    if (got.size() != want.size()) {
        *msg = what + ": size " + std::to_string(got.size()) + " != " + std::to_string(want.size());
        return false;
    }
    double worst = 0.0;
    std::size_t worst_i = 0;
    long long first = -1;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double err = std::fabs(double(got[i]) - want[i]);
        if (!(err <= atol + rtol * std::fabs(want[i])) && first < 0) first = static_cast<long long>(i);
        if (!(err <= worst)) {
            worst = err;
            worst_i = i;
        }
    }
    if (first < 0) return true;
    char buf[400];
    std::snprintf(buf, sizeof buf, "%s: element %lld is %.9g, expected %.9g; largest error %.3g at %zu (atol %.1g, rtol %.1g)",
                  what.c_str(), first, got[first], want[first], worst, worst_i, atol, rtol);
    *msg = buf;
    return false;
}

}  // namespace gpu_test

#define GPU_COMPARE(got, want, atol, rtol, what)                                         \
    do {                                                                                 \
        std::string gpu_compare_msg;                                                     \
        if (!gpu_test::all_close((got), (want), (atol), (rtol), (what), &gpu_compare_msg)) \
            QFAIL(gpu_compare_msg.c_str());                                              \
    } while (0)
