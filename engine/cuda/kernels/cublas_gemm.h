#pragma once
// BF16 GEMMs through cuBLAS with f32 accumulation: the fast mode's projections.
// cuBLAS is dlopen()ed, not linked: this toolkit ships no static cuBLAS, and the
// plugin must load on a machine that has only the NVIDIA driver, where it then
// runs every product on matmul.h's own kernels instead.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <string>

namespace moelens::cuda {

class Cublas {
public:
    // The library and a handle, or null with `why` saying what was missing.
    static std::unique_ptr<Cublas> open(std::string* why);
    ~Cublas();
    Cublas(const Cublas&) = delete;
    Cublas& operator=(const Cublas&) = delete;

    // y [n, rows] (f32) = x [n, cols] (bf16) W^T, W [rows, cols] (bf16), both row-major;
    // CUBLAS_COMPUTE_32F: products and sums in f32.
    void gemm_bf16(const std::uint16_t* w, int rows, int cols, const std::uint16_t* x, int n, float* y,
                   cudaStream_t stream);

    const std::string& library() const { return m_library; }

    struct Api;

private:
    Cublas() = default;
    void* m_lib = nullptr;
    void* m_handle = nullptr;
    std::unique_ptr<Api> m_api;
    std::string m_library;
};

}  // namespace moelens::cuda
