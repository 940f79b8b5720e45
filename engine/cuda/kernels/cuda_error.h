#pragma once
// CUDA failures as exceptions that name the kernel or call and carry CUDA's own
// message, so a bad launch or an out-of-memory becomes an engine error the app
// survives instead of an abort (unlike llm.c / calm, which exit).
#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace moelens::cuda {

class CudaError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Throws CudaError("<what>: <CUDA message> (<error name>)") unless e is cudaSuccess.
void check_cuda(cudaError_t e, const char* what);

// After a kernel launch: a bad configuration shows up in cudaGetLastError at
// once, an illegal address only at the next synchronising call; both name `kernel`.
void check_launch(const char* kernel);

}  // namespace moelens::cuda
