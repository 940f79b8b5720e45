// The plain reference: one multiply-add at a time, accumulated in double so it
// is a trustworthy yardstick for the vector sets (whose f32 sums run in another
// order). Also the fallback on CPUs without AVX2.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "cpu/simd/kernels.h"
#include "moelens/safetensors.h"

namespace moelens::cpu::simd {
namespace {

float load(const float* w, std::size_t i) { return w[i]; }

struct Bf16 {
    const std::uint16_t* p;
};
struct F16 {
    const std::uint16_t* p;
};
float load(Bf16 w, std::size_t i) { return bf16_to_f32(w.p[i]); }
float load(F16 w, std::size_t i) { return f16_to_f32(w.p[i]); }

template <class W>
void matvec(W w, int cols, const float* x, float* y, int rb, int re)
{
    for (int r = rb; r < re; ++r) {
        double acc = 0.0;
        for (int c = 0; c < cols; ++c) acc += static_cast<double>(load(w, static_cast<std::size_t>(r) * cols + c)) * x[c];
        y[r] = static_cast<float>(acc);
    }
}

template <class W>
void gemm(W w, int cols, const float* x, int ldx, int n, float* y, int ldy, int rb, int re)
{
    for (int t = 0; t < n; ++t)
        matvec(w, cols, x + static_cast<std::size_t>(t) * ldx, y + static_cast<std::size_t>(t) * ldy, rb, re);
}

void matvec_f32(const float* w, int cols, const float* x, float* y, int rb, int re) { matvec(w, cols, x, y, rb, re); }
void matvec_bf16(const std::uint16_t* w, int cols, const float* x, float* y, int rb, int re)
{
    matvec(Bf16{w}, cols, x, y, rb, re);
}
void matvec_f16(const std::uint16_t* w, int cols, const float* x, float* y, int rb, int re)
{
    matvec(F16{w}, cols, x, y, rb, re);
}
void gemm_f32(const float* w, int cols, const float* x, int ldx, int n, float* y, int ldy, int rb, int re)
{
    gemm(w, cols, x, ldx, n, y, ldy, rb, re);
}
void gemm_bf16(const std::uint16_t* w, int cols, const float* x, int ldx, int n, float* y, int ldy, int rb, int re)
{
    gemm(Bf16{w}, cols, x, ldx, n, y, ldy, rb, re);
}
void gemm_f16(const std::uint16_t* w, int cols, const float* x, int ldx, int n, float* y, int ldy, int rb, int re)
{
    gemm(F16{w}, cols, x, ldx, n, y, ldy, rb, re);
}

template <class W>
void matvec_t(W w, int rows, int cols, const float* x, float* y, int cb, int ce)
{
    for (int c = cb; c < ce; ++c) {
        double acc = 0.0;
        for (int r = 0; r < rows; ++r) acc += static_cast<double>(load(w, static_cast<std::size_t>(r) * cols + c)) * x[r];
        y[c] = static_cast<float>(acc);
    }
}
void matvec_t_f32(const float* w, int rows, int cols, const float* x, float* y, int cb, int ce)
{
    matvec_t(w, rows, cols, x, y, cb, ce);
}
void matvec_t_bf16(const std::uint16_t* w, int rows, int cols, const float* x, float* y, int cb, int ce)
{
    matvec_t(Bf16{w}, rows, cols, x, y, cb, ce);
}
void matvec_t_f16(const std::uint16_t* w, int rows, int cols, const float* x, float* y, int cb, int ce)
{
    matvec_t(F16{w}, rows, cols, x, y, cb, ce);
}

template <class W>
void gemm_t(W w, int rows, int cols, const float* x, int ldx, int n, float* y, int ldy, int cb, int ce)
{
    for (int t = 0; t < n; ++t)
        matvec_t(w, rows, cols, x + static_cast<std::size_t>(t) * ldx, y + static_cast<std::size_t>(t) * ldy, cb, ce);
}
void gemm_t_f32(const float* w, int rows, int cols, const float* x, int ldx, int n, float* y, int ldy, int cb, int ce)
{
    gemm_t(w, rows, cols, x, ldx, n, y, ldy, cb, ce);
}
void gemm_t_bf16(const std::uint16_t* w, int rows, int cols, const float* x, int ldx, int n, float* y, int ldy, int cb,
                 int ce)
{
    gemm_t(Bf16{w}, rows, cols, x, ldx, n, y, ldy, cb, ce);
}
void gemm_t_f16(const std::uint16_t* w, int rows, int cols, const float* x, int ldx, int n, float* y, int ldy, int cb,
                int ce)
{
    gemm_t(F16{w}, rows, cols, x, ldx, n, y, ldy, cb, ce);
}

double attention_score(const float* q_lat, const float* q_pe, const float* row, int dc, int dr, float scale, int h)
{
    double acc = 0.0;
    for (int c = 0; c < dc; ++c) acc += static_cast<double>(q_lat[static_cast<std::size_t>(h) * dc + c]) * row[c];
    for (int c = 0; c < dr; ++c) acc += static_cast<double>(q_pe[static_cast<std::size_t>(h) * dr + c]) * row[dc + c];
    return scale * acc;
}

// Per head: the scores, their maximum, the weights, then the weighted sum, all in
// double. The scores live in this thread's buffer (grown, never shrunk).
void attention_partial(const float* q_lat, const float* q_pe, const LatentCacheView& cache, int sb, int se, int dc,
                       int dr, float scale, float* m, float* l, float* o, int hb, int he)
{
    thread_local std::vector<double> p;
    if (p.size() < static_cast<std::size_t>(se - sb)) p.resize(static_cast<std::size_t>(se - sb));
    for (int h = hb; h < he; ++h) {
        double mx = -std::numeric_limits<double>::infinity();
        for (int s = sb; s < se; ++s) {
            p[s - sb] = attention_score(q_lat, q_pe, cache.row(s), dc, dr, scale, h);
            mx = std::max(mx, p[s - sb]);
        }
        double sum = 0.0;
        for (int s = sb; s < se; ++s) {
            p[s - sb] = std::exp(p[s - sb] - mx);
            sum += p[s - sb];
        }
        for (int c = 0; c < dc; ++c) {
            double acc = 0.0;
            for (int s = sb; s < se; ++s) acc += p[s - sb] * cache.row(s)[c];
            o[static_cast<std::size_t>(h) * dc + c] = static_cast<float>(acc);
        }
        m[h] = static_cast<float>(mx);
        l[h] = static_cast<float>(sum);
    }
}

void silu_mul(float* gate, const float* up, int n)
{
    for (int i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

// y = sum over blocks of scale_w * scale_x * (sum_i (q_i + 128) a_i - 128 sum_i a_i);
// the integer part is exact, so every set agrees on it bit for bit.
float dot_q8(const Q8View& w, int r, const Q8Activations& x, int t)
{
    const std::uint8_t* q = w.q + static_cast<std::size_t>(r) * w.blocks * kQ8Block;
    const float* sw = w.scales + static_cast<std::size_t>(r) * w.blocks;
    const std::int8_t* a = x.q_row(t);
    const float* sx = x.scale_row(t);
    const std::int32_t* off = x.offset_row(t);
    double acc = 0.0;
    for (int b = 0; b < w.blocks; ++b) {
        int dot = -off[b];
        for (int i = 0; i < kQ8Block; ++i) dot += int(q[b * kQ8Block + i]) * int(a[b * kQ8Block + i]);
        acc += static_cast<double>(sw[b]) * sx[b] * dot;
    }
    return static_cast<float>(acc);
}

void matvec_q8(const Q8View& w, const Q8Activations& x, float* y, int rb, int re)
{
    for (int r = rb; r < re; ++r) y[r] = dot_q8(w, r, x, 0);
}

void gemm_q8(const Q8View& w, const Q8Activations& x, float* y, int ldy, int rb, int re)
{
    for (int t = 0; t < x.n; ++t)
        for (int r = rb; r < re; ++r) y[static_cast<std::size_t>(t) * ldy + r] = dot_q8(w, r, x, t);
}

}  // namespace

const KernelSet& scalar_kernels()
{
    static const KernelSet k{SimdLevel::scalar, matvec_f32, matvec_bf16, matvec_f16, matvec_q8,
                             gemm_f32,          gemm_bf16,  gemm_f16,    gemm_q8,
                             matvec_t_f32,      matvec_t_bf16, matvec_t_f16,
                             gemm_t_f32, gemm_t_bf16, gemm_t_f16, attention_partial, silu_mul};
    return k;
}

}  // namespace moelens::cpu::simd
