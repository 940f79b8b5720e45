#include "cuda/kernels/cublas_gemm.h"

#include <cublas_v2.h>
#include <dlfcn.h>

#include <cstdlib>
#include <vector>

#include "cuda/kernels/cuda_error.h"

namespace moelens::cuda {

// The few entry points used, resolved by name from the loaded library; the
// types come from cublas_v2.h, so a signature change fails to compile here.
struct Cublas::Api {
    decltype(&cublasCreate_v2) create = nullptr;
    decltype(&cublasDestroy_v2) destroy = nullptr;
    decltype(&cublasSetStream_v2) set_stream = nullptr;
    // cublasGemmEx is overloaded in C++, so its C signature is spelled out.
    cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                              const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                              cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t) = nullptr;
    decltype(&cublasGetStatusString) status_string = nullptr;
};

namespace {

template <class F>
bool resolve(void* lib, const char* name, F& f)
{
    f = reinterpret_cast<F>(dlsym(lib, name));
    return f != nullptr;
}

// The soname this code was compiled against, then the toolkit's usual folders.
std::vector<std::string> candidates()
{
    const std::string so = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
    std::vector<std::string> out{so};
    if (const char* home = std::getenv("CUDA_HOME"); home && *home) out.push_back(std::string(home) + "/lib64/" + so);
    out.push_back("/usr/local/cuda/lib64/" + so);
    return out;
}

}  // namespace

std::unique_ptr<Cublas> Cublas::open(std::string* why)
{
    std::unique_ptr<Cublas> c(new Cublas);
    std::string tried;
    for (const auto& path : candidates()) {
        c->m_lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (c->m_lib) {
            c->m_library = path;
            break;
        }
        const char* e = dlerror();
        tried += (tried.empty() ? "" : "; ") + std::string(e ? e : path.c_str());
    }
    if (!c->m_lib) {
        if (why) *why = "cuBLAS not found (" + tried + ")";
        return nullptr;
    }
    c->m_api = std::make_unique<Api>();
    Api& a = *c->m_api;
    if (!resolve(c->m_lib, "cublasCreate_v2", a.create) || !resolve(c->m_lib, "cublasDestroy_v2", a.destroy) ||
        !resolve(c->m_lib, "cublasSetStream_v2", a.set_stream) || !resolve(c->m_lib, "cublasGemmEx", a.gemm_ex) ||
        !resolve(c->m_lib, "cublasGetStatusString", a.status_string)) {
        if (why) *why = c->m_library + " lacks an expected cuBLAS entry point";
        return nullptr;
    }
    cublasHandle_t h = nullptr;
    const cublasStatus_t st = a.create(&h);
    if (st != CUBLAS_STATUS_SUCCESS) {
        if (why) *why = std::string("cublasCreate: ") + a.status_string(st);
        return nullptr;
    }
    c->m_handle = h;
    return c;
}

Cublas::~Cublas()
{
    if (m_handle && m_api) m_api->destroy(static_cast<cublasHandle_t>(m_handle));
    if (m_lib) dlclose(m_lib);
}

void Cublas::gemm_bf16(const std::uint16_t* w, int rows, int cols, const std::uint16_t* x, int n, float* y,
                       cudaStream_t stream)
{
    auto h = static_cast<cublasHandle_t>(m_handle);
    cublasStatus_t st = m_api->set_stream(h, stream);
    // Column-major view: y^T [rows, n] = W [rows, cols] (row-major, so op T of a
    // cols x rows column-major matrix) times x^T [cols, n].
    const float alpha = 1.0f, beta = 0.0f;
    if (st == CUBLAS_STATUS_SUCCESS)
        st = m_api->gemm_ex(h, CUBLAS_OP_T, CUBLAS_OP_N, rows, n, cols, &alpha, w, CUDA_R_16BF, cols, x, CUDA_R_16BF,
                            cols, &beta, y, CUDA_R_32F, rows, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS)
        throw CudaError("cublasGemmEx (bf16 " + std::to_string(rows) + "x" + std::to_string(cols) + ", " +
                        std::to_string(n) + " tokens): " + m_api->status_string(st));
}

}  // namespace moelens::cuda
