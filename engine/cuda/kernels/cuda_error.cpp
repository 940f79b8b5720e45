#include "cuda/kernels/cuda_error.h"

namespace moelens::cuda {

void check_cuda(cudaError_t e, const char* what)
{
    if (e == cudaSuccess) return;
    throw CudaError(std::string(what) + ": " + cudaGetErrorString(e) + " (" + cudaGetErrorName(e) + ")");
}

void check_launch(const char* kernel)
{
    check_cuda(cudaGetLastError(), kernel);
}

}  // namespace moelens::cuda
