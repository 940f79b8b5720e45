// moelens-bench's measurements (moelens/cpu_speed.h), run on the engine's own
// thread pool and kernels so that they measure what the forward step gets.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <tuple>
#include <vector>

#include "cpu/large_pages.h"
#include "cpu/simd/fma_peak.h"
#include "cpu/simd/kernels.h"
#include "cpu/thread_pool.h"
#include "moelens/cpu_speed.h"
#include "moelens/error.h"

namespace moelens {
namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Decode passes must stream the weights from memory, as in a forward step,
// not from the last-level cache: a matrix is held in as many copies as make up
// this many bytes, and each pass reads the next copy.
constexpr std::size_t kStreamBytes = std::size_t(256) << 20;

struct ProductData {
    int copies = 1;
    int next = 0;
    std::vector<float> f32;          // [copies, rows, cols] when dtype = f32
    std::vector<std::uint16_t> u16;  // [copies, rows, cols] bf16 / f16 weights
    std::vector<cpu::simd::Q8Matrix> q8;  // [copies]
    std::vector<float> x, y;
    cpu::simd::Q8Activations xq;
};

}  // namespace

class CpuProbeState {
public:
    explicit CpuProbeState(unsigned threads) : pool(threads) {}
    ThreadPool pool;
    cpu::LargePageBuffer read_buf;
    std::vector<std::uint64_t> read_sums;  // one per thread, keeps the reads alive
    std::map<std::tuple<int, int, int, int>, ProductData> products;
};

std::string cpu_kernel_level() { return cpu::simd::simd_level_name(cpu::simd::active_simd_level()); }

std::string cpu_feature_list()
{
    const auto& f = cpu::simd::cpu_features();
    std::string s;
    const auto add = [&](bool on, const char* name) {
        if (!on) return;
        if (!s.empty()) s += ' ';
        s += name;
    };
    add(f.avx2, "avx2");
    add(f.fma, "fma");
    add(f.f16c, "f16c");
    add(f.avx512f, "avx512f");
    add(f.avx512bw, "avx512bw");
    add(f.avx512vl, "avx512vl");
    add(f.avx512dq, "avx512dq");
    add(f.avx512bf16, "avx512bf16");
    add(f.avx512vnni, "avx512vnni");
    return s.empty() ? "none" : s;
}

const char* probe_dtype_name(ProbeDtype t)
{
    switch (t) {
    case ProbeDtype::f32: return "f32";
    case ProbeDtype::bf16: return "bf16";
    case ProbeDtype::f16: return "f16";
    case ProbeDtype::int8: return "int8";
    }
    return "?";
}

CpuProbe::CpuProbe(unsigned threads) : m_state(std::make_unique<CpuProbeState>(threads)) {}
CpuProbe::~CpuProbe() = default;
unsigned CpuProbe::threads() const { return m_state->pool.size(); }

double CpuProbe::read_pass(std::size_t bytes)
{
    auto& st = *m_state;
    const std::size_t words = bytes / sizeof(std::uint64_t);
    if (st.read_buf.size() != bytes) {
        st.read_buf = cpu::LargePageBuffer(bytes);
        std::memset(st.read_buf.data(), 1, bytes);  // fault every page in before timing
        st.read_sums.assign(threads() * 8, 0);  // 64 bytes apart: no false sharing
    }
    const auto* data = reinterpret_cast<const std::uint64_t*>(st.read_buf.data());
    const unsigned nt = threads();
    const auto t0 = Clock::now();
    st.pool.parallel_for(static_cast<int>(nt), [&](int b, int e) {
        for (int t = b; t < e; ++t) {
            const std::size_t lo = words * t / nt, hi = words * (t + 1) / nt;
            // Four independent sums: loads, not the add chain, limit the loop.
            std::uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            std::size_t i = lo;
            for (; i + 4 <= hi; i += 4) {
                s0 += data[i];
                s1 += data[i + 1];
                s2 += data[i + 2];
                s3 += data[i + 3];
            }
            for (; i < hi; ++i) s0 += data[i];
            st.read_sums[static_cast<std::size_t>(t) * 8] += s0 + s1 + s2 + s3;
        }
    });
    return since(t0);
}

double CpuProbe::fma_peak(double seconds)
{
    auto& st = *m_state;
    const auto level = cpu::simd::active_simd_level();
    // Calibrate the iteration count on one thread, then time all threads.
    std::uint64_t iters = 1 << 16;
    float sink = 0.0f;
    for (;;) {
        const auto t0 = Clock::now();
        cpu::simd::fma_chains(level, iters, &sink);
        const double dt = since(t0);
        if (dt >= 0.02) {
            iters = static_cast<std::uint64_t>(static_cast<double>(iters) * seconds / dt) + 1;
            break;
        }
        iters *= 4;
    }
    const unsigned nt = threads();
    std::vector<std::uint64_t> flops(nt * 8, 0);
    std::vector<float> sinks(nt * 16, 0.0f);
    const auto t0 = Clock::now();
    st.pool.parallel_for(static_cast<int>(nt), [&](int b, int e) {
        for (int t = b; t < e; ++t) flops[t * 8] = cpu::simd::fma_chains(level, iters, &sinks[t * 16]);
    });
    const double dt = since(t0);
    std::uint64_t total = 0;
    for (unsigned t = 0; t < nt; ++t) total += flops[t * 8];
    return static_cast<double>(total) / dt;
}

std::uint64_t CpuProbe::weight_bytes(ProbeDtype dtype, int rows, int cols)
{
    const std::uint64_t n = static_cast<std::uint64_t>(rows) * cols;
    switch (dtype) {
    case ProbeDtype::f32: return n * 4;
    case ProbeDtype::bf16:
    case ProbeDtype::f16: return n * 2;
    case ProbeDtype::int8:
        return static_cast<std::uint64_t>(rows) * cpu::simd::q8_blocks(cols) * (cpu::simd::kQ8Block + sizeof(float));
    }
    return 0;
}

double CpuProbe::product_pass(ProbeDtype dtype, int rows, int cols, int tokens)
{
    if (rows < 1 || cols < 1 || tokens < 1)
        throw BackendError("cpu probe: product " + std::to_string(rows) + "x" + std::to_string(cols) + " x " +
                           std::to_string(tokens) + " tokens: every size must be >= 1");
    auto& st = *m_state;
    ProductData& d = st.products[{static_cast<int>(dtype), rows, cols, tokens}];
    const std::size_t n = static_cast<std::size_t>(rows) * cols;
    if (d.x.empty()) {
        const std::uint64_t wb = weight_bytes(dtype, rows, cols);
        d.copies = tokens == 1 ? static_cast<int>(std::max<std::uint64_t>(1, (kStreamBytes + wb - 1) / wb)) : 1;
        std::mt19937 rng(7);
        std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
        d.x.resize(static_cast<std::size_t>(tokens) * cols);
        for (float& v : d.x) v = dist(rng);
        d.y.assign(static_cast<std::size_t>(tokens) * rows, 0.0f);
        std::vector<float> f(n);
        for (float& v : f) v = dist(rng) * 0.05f;
        if (dtype == ProbeDtype::f32) {
            d.f32.resize(n * d.copies);
            for (int c = 0; c < d.copies; ++c) std::copy(f.begin(), f.end(), d.f32.begin() + c * n);
        } else {
            // bf16 bits serve for f16 too: the f16 kernel reads any bit pattern at
            // the same speed.
            std::vector<std::uint16_t> h(n);
            for (std::size_t i = 0; i < n; ++i) h[i] = f32_to_bf16(f[i]);
            if (dtype == ProbeDtype::int8) {
                const WeightView src{reinterpret_cast<const std::byte*>(h.data()), DType::BF16, rows, cols};
                for (int c = 0; c < d.copies; ++c) {
                    d.q8.emplace_back(rows, cols);
                    cpu::simd::Q8Matrix& q = d.q8.back();
                    st.pool.parallel_for(rows, [&](int b, int e) { cpu::simd::quantize_q8_rows(src, q, b, e); }, 16);
                }
            } else {
                d.u16.resize(n * d.copies);
                for (int c = 0; c < d.copies; ++c) std::copy(h.begin(), h.end(), d.u16.begin() + c * n);
            }
        }
    }
    const int copy = d.next;
    d.next = (d.next + 1) % d.copies;
    WeightView w{nullptr, DType::F32, rows, cols};
    if (dtype == ProbeDtype::f32) w = {reinterpret_cast<const std::byte*>(d.f32.data() + copy * n), DType::F32, rows, cols};
    if (dtype == ProbeDtype::bf16) w = {reinterpret_cast<const std::byte*>(d.u16.data() + copy * n), DType::BF16, rows, cols};
    if (dtype == ProbeDtype::f16) w = {reinterpret_cast<const std::byte*>(d.u16.data() + copy * n), DType::F16, rows, cols};

    const auto& k = cpu::simd::active_kernels();
    const auto t0 = Clock::now();
    if (dtype == ProbeDtype::int8) {
        cpu::simd::quantize_activations(d.x.data(), cols, tokens, cols, d.xq);
        const cpu::simd::Q8View v = d.q8[copy].view();
        st.pool.parallel_for(rows, [&](int b, int e) {
            if (tokens == 1)
                k.matvec_q8(v, d.xq, d.y.data(), b, e);
            else
                k.gemm_q8(v, d.xq, d.y.data(), rows, b, e);
        }, 16);
    } else if (tokens == 1) {
        st.pool.parallel_for(rows, [&](int b, int e) { cpu::simd::matvec_rows(w, d.x.data(), d.y.data(), b, e); }, 16);
    } else {
        st.pool.parallel_for(rows, [&](int b, int e) {
            cpu::simd::gemm_rows(w, d.x.data(), cols, tokens, d.y.data(), rows, b, e);
        }, 16);
    }
    return since(t0);
}

}  // namespace moelens
