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
// Elementwise operations smaller than this stay on the calling thread.
constexpr int kParallelMinElements = 1 << 16;
// matvec_multi and ffn_sum handle up to this many matrices / terms in one job
// (DeepSeek-V3: 8 routed + 1 shared expert); more fall back to one at a time.
constexpr int kMaxMulti = 16;

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
            // The tokens quantised over the threads first (a prompt batch's inputs are
            // ~0.1 ms per 48 x 2048 on one thread, once per product).
            xq.resize(n, w.cols);
            const auto quantise = [&](int b, int e) {
                for (int t = b; t < e; ++t)
                    cpu::simd::quantize_activation_blocks(x + static_cast<std::size_t>(t) * w.cols, w.cols, t, 0, xq.blocks, xq);
            };
            if (static_cast<long long>(n) * w.cols < kParallelMinElements)
                quantise(0, n);
            else
                m_pool.parallel_for(n, quantise);
            const cpu::simd::Q8View v = cpu::simd::q8_view(w);
            const auto& k = cpu::simd::active_kernels();
            m_pool.parallel_for(w.rows, [&](int b, int e) { k.gemm_q8(v, xq, y, w.rows, b, e); }, 16);
            return;
        }
        m_pool.parallel_for(w.rows, [&](int b, int e) { cpu::simd::gemm_rows(w, x, w.cols, n, y, w.rows, b, e); }, 16);
    }
    // The rows of all matrices as one range split over the threads: one job.
    void matvec_multi(const WeightView* const* w, float* const* y, int n, const float* x) override
    {
        if (n > kMaxMulti) {
            Backend::matvec_multi(w, y, n, x);
            return;
        }
        int begin[kMaxMulti + 1] = {};
        long long work = 0;
        bool any_q8 = false;
        for (int i = 0; i < n; ++i) {
            begin[i + 1] = begin[i] + w[i]->rows;
            work += static_cast<long long>(w[i]->rows) * w[i]->cols;
            any_q8 |= w[i]->dtype == DType::U8;
        }
        cpu::simd::Q8Activations& xq = tls_x8();
        if (any_q8) cpu::simd::quantize_activations(x, w[0]->cols, 1, w[0]->cols, xq);
        const auto run = [&](int b, int e) {
            for (int i = 0; i < n; ++i) {
                const int lo = std::max(b, begin[i]), hi = std::min(e, begin[i + 1]);
                if (lo < hi) rows_of(*w[i], x, xq, y[i], lo - begin[i], hi - begin[i]);
            }
        };
        if (work < kParallelMinWork)
            run(0, begin[n]);
        else
            m_pool.parallel_for(begin[n], run, 16);
    }
    // Two jobs for the whole sum: (1) the gate and up rows of every term, each
    // thread applying silu(gate) * up to its own rows (and quantising them for
    // int8 down matrices); (2) the output rows, each thread summing every term's
    // down product over its rows. The terms' hidden activations sit in scratch
    // as in the default: term i's gate (then silu * up) at 2 * (sum of the widths
    // before it), its up after that.
    void ffn_sum(const FfnTerm* terms, int n, const float* x, float* out, float* scratch) override
    {
        if (n <= 0 || n > kMaxMulti) {
            Backend::ffn_sum(terms, n, x, out, scratch);
            return;
        }
        const int hidden = terms[0].down->rows, cols = terms[0].gate->cols;
        int begin[kMaxMulti + 1] = {};
        long long work = 0;
        bool x_q8 = false, h_q8 = false, block_aligned = true;
        for (int i = 0; i < n; ++i) {
            const int w = terms[i].gate->rows;
            begin[i + 1] = begin[i] + w;
            work += 3LL * w * cols;
            x_q8 |= terms[i].gate->dtype == DType::U8 || terms[i].up->dtype == DType::U8;
            h_q8 |= terms[i].down->dtype == DType::U8;
            block_aligned &= w % cpu::simd::kQ8Block == 0;
        }
        float* tmp = scratch + 2 * static_cast<std::size_t>(begin[n]);
        cpu::simd::Q8Activations& xq = tls_x8();
        if (x_q8) cpu::simd::quantize_activations(x, cols, 1, cols, xq);
        thread_local cpu::simd::Q8Activations tls_h8[kMaxMulti];
        cpu::simd::Q8Activations* hq = tls_h8;  // this thread's buffers, read by all
        if (h_q8)
            for (int i = 0; i < n; ++i) hq[i].resize(1, terms[i].gate->rows);
        const bool quantise_in_job = h_q8 && block_aligned;
        const auto gate_up = [&](int b, int e) {
            for (int i = 0; i < n; ++i) {
                const int lo = std::max(b, begin[i]) - begin[i], hi = std::min(e, begin[i + 1]) - begin[i];
                if (lo >= hi) continue;
                const int w = terms[i].gate->rows;
                float* g = scratch + 2 * static_cast<std::size_t>(begin[i]);
                rows_of(*terms[i].gate, x, xq, g, lo, hi);
                rows_of(*terms[i].up, x, xq, g + w, lo, hi);
                cpu::silu_mul(g + lo, g + w + lo, hi - lo);
                if (quantise_in_job && terms[i].down->dtype == DType::U8)
                    cpu::simd::quantize_activation_blocks(g, w, 0, lo / cpu::simd::kQ8Block,
                                                          (hi + cpu::simd::kQ8Block - 1) / cpu::simd::kQ8Block, hq[i]);
            }
        };
        const auto down = [&](int b, int e) {
            for (int r = b; r < e; ++r) out[r] = 0.0f;
            for (int i = 0; i < n; ++i) {
                const float* g = scratch + 2 * static_cast<std::size_t>(begin[i]);
                rows_of(*terms[i].down, g, hq[i], tmp, b, e);
                const float wt = terms[i].weight;
                for (int r = b; r < e; ++r) out[r] += wt * tmp[r];
            }
        };
        // Grains of whole q8 blocks when the threads quantise their own rows.
        const int grain = quantise_in_job ? cpu::simd::kQ8Block : 16;
        if (work < kParallelMinWork)
            gate_up(0, begin[n]);
        else
            m_pool.parallel_for(begin[n], gate_up, grain);
        if (h_q8 && !quantise_in_job)
            for (int i = 0; i < n; ++i)
                if (terms[i].down->dtype == DType::U8)
                    cpu::simd::quantize_activations(scratch + 2 * static_cast<std::size_t>(begin[i]), terms[i].gate->rows, 1,
                                                    terms[i].gate->rows, hq[i]);
        if (work < kParallelMinWork)
            down(0, hidden);
        else
            m_pool.parallel_for(hidden, down, 16);
    }
    // Two jobs for all groups: (1) the gate and up rows of every expert, back to
    // back, split over the threads (each applying silu(gate) * up to its own rows
    // of every token of the group, and quantising them for int8 down matrices);
    // (2) the down rows of every expert. Each thread streams one contiguous part
    // of the step's expert weights, however few rows each expert has.
    void ffn_groups(const FfnGroup* groups, int n_groups, const float* x, float* y, float* scratch) override
    {
        if (n_groups <= 0) return;
        const int hidden = groups[0].down->rows;
        thread_local std::vector<int> tls_begin;
        thread_local std::vector<std::size_t> tls_off;
        thread_local std::vector<cpu::simd::Q8Activations> tls_xq, tls_hq;
        std::vector<int>& begin = tls_begin;  // gate rows before group g
        std::vector<std::size_t>& off = tls_off;
        std::vector<cpu::simd::Q8Activations>& xq = tls_xq;  // this thread's buffers, read by all
        std::vector<cpu::simd::Q8Activations>& hq = tls_hq;
        begin.assign(static_cast<std::size_t>(n_groups) + 1, 0);
        off.assign(static_cast<std::size_t>(n_groups), 0);
        if (xq.size() < static_cast<std::size_t>(n_groups)) {
            xq.resize(static_cast<std::size_t>(n_groups));
            hq.resize(static_cast<std::size_t>(n_groups));
        }
        long long work = 0;
        bool h_q8 = false, block_aligned = true;
        for (int i = 0; i < n_groups; ++i) {
            const FfnGroup& g = groups[i];
            const int w = g.gate->rows;
            begin[i + 1] = begin[i] + w;
            if (i + 1 < n_groups) off[i + 1] = off[i] + 2 * static_cast<std::size_t>(g.n) * w;
            work += 3LL * w * hidden * g.n;
            if (g.gate->dtype == DType::U8 || g.up->dtype == DType::U8)
                cpu::simd::quantize_activations(x + static_cast<std::size_t>(g.first) * hidden, hidden, g.n, hidden, xq[i]);
            if (g.down->dtype == DType::U8) {
                h_q8 = true;
                hq[i].resize(g.n, w);
            }
            block_aligned &= w % cpu::simd::kQ8Block == 0;
        }
        const bool quantise_in_job = h_q8 && block_aligned;
        const auto gate_up = [&](int b, int e) {
            for (int i = 0; i < n_groups; ++i) {
                const int lo = std::max(b, begin[i]) - begin[i], hi = std::min(e, begin[i + 1]) - begin[i];
                if (lo >= hi) continue;
                const FfnGroup& g = groups[i];
                const int w = g.gate->rows;
                float* gate = scratch + off[i];
                float* up = gate + static_cast<std::size_t>(g.n) * w;
                const float* xg = x + static_cast<std::size_t>(g.first) * hidden;
                rows_n(*g.gate, xg, hidden, xq[i], g.n, gate, w, lo, hi);
                rows_n(*g.up, xg, hidden, xq[i], g.n, up, w, lo, hi);
                for (int t = 0; t < g.n; ++t) {
                    float* gt = gate + static_cast<std::size_t>(t) * w;
                    cpu::silu_mul(gt + lo, up + static_cast<std::size_t>(t) * w + lo, hi - lo);
                    if (quantise_in_job && g.down->dtype == DType::U8)
                        cpu::simd::quantize_activation_blocks(gt, w, t, lo / cpu::simd::kQ8Block,
                                                              (hi + cpu::simd::kQ8Block - 1) / cpu::simd::kQ8Block, hq[i]);
                }
            }
        };
        const auto down = [&](int b, int e) {
            for (int i = b / hidden; i < n_groups && i * hidden < e; ++i) {
                const int lo = std::max(b, i * hidden) - i * hidden, hi = std::min(e, (i + 1) * hidden) - i * hidden;
                const FfnGroup& g = groups[i];
                rows_n(*g.down, scratch + off[i], g.gate->rows, hq[i], g.n, y + static_cast<std::size_t>(g.first) * hidden,
                       hidden, lo, hi);
            }
        };
        const int grain = quantise_in_job ? cpu::simd::kQ8Block : 16;
        if (work < kParallelMinWork)
            gate_up(0, begin[n_groups]);
        else
            m_pool.parallel_for(begin[n_groups], gate_up, grain);
        if (h_q8 && !quantise_in_job)
            for (int i = 0; i < n_groups; ++i)
                if (groups[i].down->dtype == DType::U8)
                    cpu::simd::quantize_activations(scratch + off[i], groups[i].gate->rows, groups[i].n, groups[i].gate->rows,
                                                    hq[i]);
        if (work < kParallelMinWork)
            down(0, n_groups * hidden);
        else
            m_pool.parallel_for(n_groups * hidden, down, 16);
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
    // Heads over threads; per head one transposed GEMM over all n tokens, so
    // W_UK_h is read once per batch (and stays in L1 per column tile). Its sums
    // run in the order of matvec_transposed's: a batch gives bit for bit what
    // token-by-token feeding gives (where the latent width is whole vectors).
    void absorb_query_batch(const WeightView& kv_b, const float* q, int n, int q_row, int n_heads, int q_stride, int dn,
                            int dv, float* q_lat) override
    {
        if (kv_b.dtype == DType::U8) {
            Backend::absorb_query_batch(kv_b, q, n, q_row, n_heads, q_stride, dn, dv, q_lat);
            return;
        }
        const int dc = kv_b.cols;
        m_pool.parallel_for(n_heads, [&](int b, int e) {
            for (int h = b; h < e; ++h)
                cpu::simd::gemm_transposed_cols(kv_b.row_slice(h * (dn + dv), dn), q + static_cast<std::size_t>(h) * q_stride,
                                                q_row, n, q_lat + static_cast<std::size_t>(h) * dc, n_heads * dc, 0, dc);
        });
    }
    void absorb_output_batch(const WeightView& kv_b, const float* out_lat, int n, int n_heads, int dn, int dv,
                             float* o) override
    {
        if (kv_b.dtype == DType::U8) {
            Backend::absorb_output_batch(kv_b, out_lat, n, n_heads, dn, dv, o);
            return;
        }
        // Per head, W_UV_h (dv x kv_lora) stays in L2 for all n tokens; the decode
        // matvec itself, so that a batch gives the values token-by-token feeding
        // gives bit for bit (for int8 models o_proj quantises them next).
        const int dc = kv_b.cols;
        m_pool.parallel_for(n_heads, [&](int b, int e) {
            for (int h = b; h < e; ++h) {
                const WeightView w_uv = kv_b.row_slice(h * (dn + dv) + dn, dv);
                for (int t = 0; t < n; ++t)
                    cpu::matvec_rows(w_uv, out_lat + (static_cast<std::size_t>(t) * n_heads + h) * dc,
                                     o + (static_cast<std::size_t>(t) * n_heads + h) * dv, 0, dv);
            }
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
    // Large (a prefill batch's FFN activations): over the threads.
    void silu_mul(float* gate, const float* up, int n) override
    {
        if (n < kParallelMinElements) {
            cpu::silu_mul(gate, up, n);
            return;
        }
        m_pool.parallel_for(n, [&](int b, int e) { cpu::silu_mul(gate + b, up + b, e - b); }, 64);
    }
    void axpy(float* y, float a, const float* x, int n) override { cpu::axpy(y, a, x, n); }
    void moe_route(const float* probs, const RouteParams& p, const std::uint8_t* disabled, int* ids, float* weights,
                   float* scratch) override
    {
        cpu::moe_route(probs, p, disabled, ids, weights, scratch);
    }
    // One pass over the cache (online softmax); the positions are split over the
    // threads, each leaving a partial for all heads, merged here. Below
    // kAttentionMinPositions per thread one thread does it all.
    void attention_mla_absorbed(const float* q_lat, const float* q_pe, const LatentCacheView& cache, const MlaDims& d,
                                float* out_lat) override
    {
        const int H = d.n_heads;
        const int parts = attention_parts(cache.n_ctx);
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
    // The rows of a ragged batch over the threads, dealt round-robin (a prompt
    // row's work grows with its position, so contiguous ranges would load the
    // last thread most). One row alone is a decode step: its positions are split
    // over the threads instead. Either way each row's positions are cut into the
    // parts attention_mla_absorbed would cut them into and merged in the same
    // order, so a row's attention is bit for bit the same alone, in a prompt chunk
    // or beside other sequences.
    void attention_mla_absorbed_rows(const float* q_lat, const float* q_pe, int n, const LatentCacheView* caches,
                                     const MlaDims& d, float* out_lat) override
    {
        if (n == 1) {
            attention_mla_absorbed(q_lat, q_pe, caches[0], d, out_lat);
            return;
        }
        const int H = d.n_heads, threads = static_cast<int>(m_pool.size());
        thread_local std::vector<float> tls_partials;
        std::vector<float>& buf = tls_partials;
        // Per thread: up to `threads` partials, laid out as in attention_mla_absorbed.
        const std::size_t per = static_cast<std::size_t>(threads) * H * (d.kv_lora + 2);
        if (buf.size() < per * threads) buf.resize(per * threads);
        const std::size_t lat = static_cast<std::size_t>(H) * d.kv_lora, pe = static_cast<std::size_t>(H) * d.dr;
        m_pool.parallel_for(std::min(threads, n), [&](int b, int e) {
            for (int i = b; i < e; ++i)
                for (int t = i; t < n; t += threads) {
                    const int n_ctx = caches[t].n_ctx, parts = attention_parts(n_ctx);
                    float* m = buf.data() + per * i;
                    float* l = m + static_cast<std::size_t>(parts) * H;
                    float* o = l + static_cast<std::size_t>(parts) * H;
                    for (int p = 0; p < parts; ++p) {
                        const std::size_t at = static_cast<std::size_t>(p) * H;
                        cpu::attention_mla_partial(q_lat + t * lat, q_pe + t * pe, caches[t], d,
                                                   static_cast<int>(static_cast<long long>(n_ctx) * p / parts),
                                                   static_cast<int>(static_cast<long long>(n_ctx) * (p + 1) / parts), m + at,
                                                   l + at, o + at * d.kv_lora);
                    }
                    cpu::attention_mla_merge(m, l, o, parts, d, out_lat + t * lat, 0, H);
                }
        });
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
    // The calling thread's buffer for a quantised input (sessions on several
    // threads share this backend). Callers bind it to a named reference, so the
    // workers read this thread's buffer (a thread_local named inside a job's
    // lambda would be each worker's own).
    static cpu::simd::Q8Activations& tls_x8()
    {
        thread_local cpu::simd::Q8Activations xq;
        return xq;
    }
    // How many position ranges a decode step's attention over n_ctx positions
    // is cut into (one per thread, at least kAttentionMinPositions each).
    int attention_parts(int n_ctx) const
    {
        return std::clamp(n_ctx / kAttentionMinPositions, 1, static_cast<int>(m_pool.size()));
    }
    // Rows [b, e) of W x, from x or, for int8 weights, from its quantised copy.
    static void rows_of(const WeightView& w, const float* x, const cpu::simd::Q8Activations& xq, float* y, int b, int e)
    {
        if (w.dtype == DType::U8)
            cpu::simd::matvec_q8_rows(w, xq, y, b, e);
        else
            cpu::matvec_rows(w, x, y, b, e);
    }
    // Rows [b, e) of W x[t] for n vectors x [n, ldx] into y [n, ldy]: one vector
    // through the decode kernels (as rows_of), several through the GEMM tiles;
    // int8 weights from the vectors' quantised copy xq.
    static void rows_n(const WeightView& w, const float* x, int ldx, const cpu::simd::Q8Activations& xq, int n, float* y,
                       int ldy, int b, int e)
    {
        if (w.dtype == DType::U8) {
            if (n == 1)
                cpu::simd::matvec_q8_rows(w, xq, y, b, e);
            else
                cpu::simd::active_kernels().gemm_q8(cpu::simd::q8_view(w), xq, y, ldy, b, e);
        } else if (n == 1) {
            cpu::matvec_rows(w, x, y, b, e);
        } else {
            cpu::simd::gemm_rows(w, x, ldx, n, y, ldy, b, e);
        }
    }
    // int8 weights: x is quantised once, on the calling thread, and read by all.
    void matvec_int8(const WeightView& w, const float* x, float* y)
    {
        cpu::simd::Q8Activations& xq = tls_x8();
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
