#pragma once
// Measurements of this machine's CPU with the engine's own thread pool and
// kernels, for moelens-bench: read bandwidth, peak f32 FMA rate, and the
// matrix products of the forward step. Each call is one timed pass; the caller
// repeats and takes medians.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace moelens {

// The kernel set the CPU backend uses ("scalar", "avx2", "avx512", "avx512_vnni";
// MOELENS_SIMD lowers it) and the vector features found.
std::string cpu_kernel_level();
std::string cpu_feature_list();

enum class ProbeDtype { f32, bf16, f16, int8 };
const char* probe_dtype_name(ProbeDtype t);

class CpuProbeState;

class CpuProbe {
public:
    explicit CpuProbe(unsigned threads);  // 0 = one per hardware thread
    ~CpuProbe();
    CpuProbe(const CpuProbe&) = delete;
    CpuProbe& operator=(const CpuProbe&) = delete;

    unsigned threads() const;

    // Every thread reads its own contiguous share of a `bytes` buffer once;
    // returns seconds. The buffer is allocated (huge pages where the kernel
    // offers them) and written on the first call for a size, untimed.
    double read_pass(std::size_t bytes);

    // Every thread runs independent f32 FMA chains on registers (the widest
    // vectors of the active kernel set) for about `seconds`; returns the
    // achieved FLOP/s (2 per multiply-add).
    double fma_peak(double seconds);

    // y = W x for `tokens` vectors with the engine's kernels, W [rows, cols] in
    // `dtype` (int8 = the q8 format, quantised once untimed; the activations are
    // quantised inside the timed pass, as in the forward step). tokens = 1 runs
    // the decode matvec, more the prefill GEMM. Rows are split over the threads.
    // Decode passes cycle through copies of W totalling 256 MiB, so the weights
    // come from memory, not from the cache. Returns seconds.
    double product_pass(ProbeDtype dtype, int rows, int cols, int tokens);
    // Bytes of W in `dtype` (what a decode pass streams).
    static std::uint64_t weight_bytes(ProbeDtype dtype, int rows, int cols);

private:
    std::unique_ptr<CpuProbeState> m_state;
};

}  // namespace moelens
