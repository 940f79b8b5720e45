// The CPU implementation of the backend interface: the kernels of this folder,
// with the large ones spread over a persistent thread pool.
#include <algorithm>
#include <memory>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/simd/kernels.h"
#include "cpu/thread_pool.h"

namespace moelens {
namespace {

// Below this many multiply-adds a job is cheaper on the calling thread than the
// wake-up of the pool (a few microseconds).
constexpr long long kParallelMinWork = 1 << 15;
// Cache positions per thread below which attention stays on one thread.
constexpr int kAttentionMinPositions = 32;

class CpuBackend final : public Backend {
public:
    explicit CpuBackend(unsigned threads) : m_pool(threads) {}

    const char* name() const override { return "cpu"; }

    void matvec(const WeightView& w, const float* x, float* y) override
    {
        if (w.dtype == DType::U8) {
            matvec_int8(w, x, y);
            return;
        }
        if (static_cast<long long>(w.rows) * w.cols < kParallelMinWork) {
            cpu::matvec_rows(w, x, y, 0, w.rows);
            return;
        }
        // Rows in grains of 16 keep each thread's output on its own cache lines.
        m_pool.parallel_for(w.rows, [&](int b, int e) { cpu::matvec_rows(w, x, y, b, e); }, 16);
    }
    void matmul(const WeightView& w, const float* x, int n, float* y) override
    {
        if (n == 1) {
            matvec(w, x, y);
            return;
        }
        // Rows in grains of 16 (whole GEMM row tiles); every thread reads all of x.
        if (w.dtype == DType::U8) {
            thread_local cpu::simd::Q8Activations tls_xq;
            cpu::simd::Q8Activations& xq = tls_xq;  // this thread's buffer, read by all (see matvec_int8)
            cpu::simd::quantize_activations(x, w.cols, n, w.cols, xq);
            const cpu::simd::Q8View v = cpu::simd::q8_view(w);
            const auto& k = cpu::simd::active_kernels();
            m_pool.parallel_for(w.rows, [&](int b, int e) { k.gemm_q8(v, xq, y, w.rows, b, e); }, 16);
            return;
        }
        m_pool.parallel_for(w.rows, [&](int b, int e) { cpu::simd::gemm_rows(w, x, w.cols, n, y, w.rows, b, e); }, 16);
    }
    void matvec_transposed(const WeightView& w, const float* x, float* y) override
    {
        if (static_cast<long long>(w.rows) * w.cols < kParallelMinWork) {
            cpu::matvec_transposed_cols(w, x, y, 0, w.cols);
            return;
        }
        m_pool.parallel_for(w.cols, [&](int b, int e) { cpu::matvec_transposed_cols(w, x, y, b, e); }, 16);
    }
    // Heads over threads in one job each (not one job per head): per head the
    // products are small (dn x kv_lora), and a job costs a wake-up.
    void absorb_query(const WeightView& kv_b, const float* q, int n_heads, int q_stride, int dn, int dv,
                      float* q_lat) override
    {
        m_pool.parallel_for(n_heads, [&](int b, int e) {
            for (int h = b; h < e; ++h)
                cpu::matvec_transposed_cols(kv_b.row_slice(h * (dn + dv), dn), q + static_cast<std::size_t>(h) * q_stride,
                                            q_lat + static_cast<std::size_t>(h) * kv_b.cols, 0, kv_b.cols);
        });
    }
    void absorb_output(const WeightView& kv_b, const float* out_lat, int n_heads, int dn, int dv, float* o) override
    {
        m_pool.parallel_for(n_heads, [&](int b, int e) {
            for (int h = b; h < e; ++h)
                cpu::matvec_rows(kv_b.row_slice(h * (dn + dv) + dn, dv), out_lat + static_cast<std::size_t>(h) * kv_b.cols,
                                 o + static_cast<std::size_t>(h) * dv, 0, dv);
        });
    }
    void embedding(const WeightView& table, int row, float* y) override { cpu::embedding_row(table, row, y); }
    void rmsnorm(const float* x, const float* weight, int n, float eps, float* y) override
    {
        cpu::rmsnorm(x, weight, n, eps, y);
    }
    void rope(float* x, int n_vectors, int stride, int dr, const float* cos, const float* sin) override
    {
        cpu::rope(x, n_vectors, stride, dr, cos, sin);
    }
    void softmax(float* x, int n) override { cpu::softmax(x, n); }
    void silu_mul(float* gate, const float* up, int n) override { cpu::silu_mul(gate, up, n); }
    void axpy(float* y, float a, const float* x, int n) override { cpu::axpy(y, a, x, n); }
    void moe_route(const float* probs, const RouteParams& p, int* ids, float* weights, float* scratch) override
    {
        cpu::moe_route(probs, p, ids, weights, scratch);
    }
    // One pass over the cache (online softmax); the positions are split over the
    // threads, each leaving a partial for all heads, merged here. Below
    // kAttentionMinPositions per thread one thread does it all.
    void attention_mla_absorbed(const float* q_lat, const float* q_pe, const LatentCacheView& cache, const MlaDims& d,
                                float* /*scores*/, float* out_lat) override
    {
        const int H = d.n_heads;
        const int parts = std::clamp(cache.n_ctx / kAttentionMinPositions, 1, static_cast<int>(m_pool.size()));
        // The partials live in the calling thread's buffer (grown, never shrunk), read by all.
        thread_local std::vector<float> tls_partials;
        std::vector<float>& buf = tls_partials;
        const std::size_t need = static_cast<std::size_t>(parts) * H * (d.kv_lora + 2);
        if (buf.size() < need) buf.resize(need);
        float* m = buf.data();
        float* l = m + static_cast<std::size_t>(parts) * H;
        float* o = l + static_cast<std::size_t>(parts) * H;
        const auto run = [&](int pb, int pe) {
            for (int p = pb; p < pe; ++p) {
                const std::size_t at = static_cast<std::size_t>(p) * H;
                cpu::attention_mla_partial(q_lat, q_pe, cache, d, static_cast<int>(static_cast<long long>(cache.n_ctx) * p / parts),
                                           static_cast<int>(static_cast<long long>(cache.n_ctx) * (p + 1) / parts), m + at,
                                           l + at, o + at * d.kv_lora);
            }
        };
        if (parts == 1)
            run(0, 1);
        else
            m_pool.parallel_for(parts, run);
        cpu::attention_mla_merge(m, l, o, parts, d, out_lat, 0, H);
    }
    void attention_mla_naive(const float* q, const float* kv, const LatentCacheView& cache, const MlaDims& d,
                             float* scores, float* out) override
    {
        const long long work = static_cast<long long>(cache.n_ctx) * d.n_heads * (d.dn + d.dr + d.dv);
        if (work < kParallelMinWork) {
            cpu::attention_mla_naive(q, kv, cache, d, scores, out, 0, d.n_heads);
            return;
        }
        m_pool.parallel_for(d.n_heads, [&](int b, int e) { cpu::attention_mla_naive(q, kv, cache, d, scores, out, b, e); });
    }

private:
    // int8 weights: x is quantised once, on the calling thread into its own
    // buffer (sessions on several threads share this backend), and read by all.
    void matvec_int8(const WeightView& w, const float* x, float* y)
    {
        thread_local cpu::simd::Q8Activations tls_xq;
        // A named reference, so the workers read this thread's buffer (a
        // thread_local named inside the lambda would be each worker's own).
        cpu::simd::Q8Activations& xq = tls_xq;
        cpu::simd::quantize_activations(x, w.cols, 1, w.cols, xq);
        if (static_cast<long long>(w.rows) * w.cols < kParallelMinWork) {
            cpu::simd::matvec_q8_rows(w, xq, y, 0, w.rows);
            return;
        }
        m_pool.parallel_for(w.rows, [&](int b, int e) { cpu::simd::matvec_q8_rows(w, xq, y, b, e); }, 16);
    }

    ThreadPool m_pool;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(unsigned threads) { return std::make_unique<CpuBackend>(threads); }

}  // namespace moelens
