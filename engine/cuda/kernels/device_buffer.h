#pragma once
// RAII for device memory: one allocation, freed with its owner, movable, never
// copied. Sizes are in elements of T.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>
#include <utility>

#include "cuda/kernels/cuda_error.h"

namespace moelens::cuda {

template <class T>
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(std::size_t count, const char* what = "DeviceBuffer") { resize(count, what); }
    ~DeviceBuffer() { release(); }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    DeviceBuffer(DeviceBuffer&& o) noexcept : m_ptr(std::exchange(o.m_ptr, nullptr)), m_count(std::exchange(o.m_count, 0)) {}
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept
    {
        if (this != &o) {
            release();
            m_ptr = std::exchange(o.m_ptr, nullptr);
            m_count = std::exchange(o.m_count, 0);
        }
        return *this;
    }

    // Drops the old contents; `what` names the allocation in an out-of-memory error.
    void resize(std::size_t count, const char* what = "DeviceBuffer")
    {
        release();
        if (count == 0) return;
        void* p = nullptr;
        check_cuda(cudaMalloc(&p, count * sizeof(T)),
                   (std::string("cudaMalloc ") + what + " (" + std::to_string(count * sizeof(T)) + " bytes)").c_str());
        m_ptr = static_cast<T*>(p);
        m_count = count;
    }

    void upload(const T* host, std::size_t count, std::size_t offset = 0)
    {
        check_cuda(cudaMemcpy(m_ptr + offset, host, count * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy to device");
    }
    void download(T* host, std::size_t count, std::size_t offset = 0) const
    {
        check_cuda(cudaMemcpy(host, m_ptr + offset, count * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy to host");
    }

    T* get() { return m_ptr; }
    const T* get() const { return m_ptr; }
    std::size_t size() const { return m_count; }
    std::size_t bytes() const { return m_count * sizeof(T); }

private:
    void release()
    {
        if (m_ptr) cudaFree(m_ptr);  // a failing free at teardown has nobody to report to
        m_ptr = nullptr;
        m_count = 0;
    }

    T* m_ptr = nullptr;
    std::size_t m_count = 0;
};

}  // namespace moelens::cuda
