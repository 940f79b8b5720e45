// Every vector kernel set this CPU supports against the scalar reference, on
// random data and on shapes that are not multiples of any vector width or tile.
#include <QTest>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cpu/simd/kernels.h"
#include "moelens/safetensors.h"

using namespace moelens;
using namespace moelens::cpu::simd;

namespace {

struct Shape {
    int rows;
    int cols;
    int tokens;
};

// Edge shapes: 1 x 1, below one vector, one past the AVX-512 width, odd tile
// remainders in rows (x % 4, x % 2) and tokens (x % 6, x % 4), one q8 block
// plus one, and a V2-Lite-sized row (2048).
const Shape kShapes[] = {{1, 1, 1},   {3, 7, 2},    {5, 17, 5},   {4, 16, 6},    {9, 65, 7},
                         {13, 129, 13}, {33, 200, 1}, {7, 2048, 3}, {66, 1408, 70}};

std::vector<SimdLevel> vector_levels()
{
    std::vector<SimdLevel> out;
    for (SimdLevel l : {SimdLevel::avx2, SimdLevel::avx512, SimdLevel::avx512_vnni})
        if (simd_level_supported(l)) out.push_back(l);
    return out;
}

std::vector<float> random_floats(std::size_t n, std::mt19937& rng, float scale = 1.0f)
{
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(n);
    for (float& f : v) f = dist(rng);
    return v;
}

std::uint16_t f32_to_f16(float f)
{
    // Test data only: values are normal and well inside the f16 range.
    std::uint32_t b;
    std::memcpy(&b, &f, 4);
    const std::uint32_t sign = (b >> 16) & 0x8000u;
    const int exp = static_cast<int>((b >> 23) & 0xff) - 127 + 15;
    const std::uint32_t mant = b & 0x7fffffu;
    if (exp <= 0) return static_cast<std::uint16_t>(sign);
    std::uint32_t h = sign | (static_cast<std::uint32_t>(exp) << 10) | (mant >> 13);
    if ((mant >> 12) & 1u) ++h;  // round half up: good enough for test data
    return static_cast<std::uint16_t>(h);
}

// A weight matrix in one dtype: its bytes and its view.
struct Matrix {
    std::vector<float> f32;
    std::vector<std::uint16_t> u16;
    WeightView view;
};

Matrix make_matrix(DType dtype, int rows, int cols, std::mt19937& rng)
{
    Matrix m;
    m.f32 = random_floats(static_cast<std::size_t>(rows) * cols, rng);
    if (dtype == DType::F32) {
        m.view = {reinterpret_cast<const std::byte*>(m.f32.data()), dtype, rows, cols};
        return m;
    }
    m.u16.resize(m.f32.size());
    for (std::size_t i = 0; i < m.f32.size(); ++i)
        m.u16[i] = dtype == DType::BF16 ? f32_to_bf16(m.f32[i]) : f32_to_f16(m.f32[i]);
    m.view = {reinterpret_cast<const std::byte*>(m.u16.data()), dtype, rows, cols};
    return m;
}

// Sum of |w| |x| over one output: the scale of the rounding error of any
// summation order (the f32 error of a dot product is bounded by n eps sum|w||x|).
std::vector<double> magnitudes(const WeightView& w, const float* x, int ldx, int n)
{
    std::vector<double> out(static_cast<std::size_t>(n) * w.rows);
    for (int t = 0; t < n; ++t)
        for (int r = 0; r < w.rows; ++r) {
            double s = 0.0;
            for (int c = 0; c < w.cols; ++c) {
                const std::size_t i = static_cast<std::size_t>(r) * w.cols + c;
                float v = 0.0f;
                switch (w.dtype) {
                case DType::BF16: v = bf16_to_f32(reinterpret_cast<const std::uint16_t*>(w.data)[i]); break;
                case DType::F16: v = f16_to_f32(reinterpret_cast<const std::uint16_t*>(w.data)[i]); break;
                default: v = reinterpret_cast<const float*>(w.data)[i]; break;
                }
                s += std::fabs(v) * std::fabs(x[static_cast<std::size_t>(t) * ldx + c]);
            }
            out[static_cast<std::size_t>(t) * w.rows + r] = s;
        }
    return out;
}

void call_matvec(const KernelSet& k, const WeightView& w, const float* x, float* y, int rb, int re)
{
    const auto* u = reinterpret_cast<const std::uint16_t*>(w.data);
    switch (w.dtype) {
    case DType::BF16: k.matvec_bf16(u, w.cols, x, y, rb, re); break;
    case DType::F16: k.matvec_f16(u, w.cols, x, y, rb, re); break;
    default: k.matvec_f32(reinterpret_cast<const float*>(w.data), w.cols, x, y, rb, re); break;
    }
}

void call_gemm(const KernelSet& k, const WeightView& w, const float* x, int ldx, int n, float* y, int ldy, int rb,
               int re)
{
    const auto* u = reinterpret_cast<const std::uint16_t*>(w.data);
    switch (w.dtype) {
    case DType::BF16: k.gemm_bf16(u, w.cols, x, ldx, n, y, ldy, rb, re); break;
    case DType::F16: k.gemm_f16(u, w.cols, x, ldx, n, y, ldy, rb, re); break;
    default: k.gemm_f32(reinterpret_cast<const float*>(w.data), w.cols, x, ldx, n, y, ldy, rb, re); break;
    }
}

// |got - want| <= 4 * cols * eps_f32 * sum|w||x| + 1e-30: the worst-case bound
// of f32 summation in any order, times a margin of 4 for the FMA/convert order.
// (Typical errors are far below it; a wrong index or a dropped tail is not.)
void compare(const std::vector<float>& got, const std::vector<float>& want, const std::vector<double>& mag, int cols,
             const std::string& what)
{
    QCOMPARE(got.size(), want.size());
    const double eps = 1.19209290e-7;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double tol = 4.0 * cols * eps * mag[i] + 1e-30;
        const double err = std::fabs(double(got[i]) - double(want[i]));
        if (!(err <= tol))
            QFAIL(qPrintable(QString("%1: output %2: got %3, reference %4 (error %5 > tolerance %6)")
                                 .arg(QString::fromStdString(what))
                                 .arg(i)
                                 .arg(got[i], 0, 'g', 9)
                                 .arg(want[i], 0, 'g', 9)
                                 .arg(err, 0, 'g', 3)
                                 .arg(tol, 0, 'g', 3)));
    }
}

std::string label(SimdLevel l, DType d, const Shape& s)
{
    return std::string(simd_level_name(l)) + " " + dtype_name(d) + " " + std::to_string(s.rows) + "x" +
           std::to_string(s.cols) + " n=" + std::to_string(s.tokens);
}

}  // namespace

class TestSimdKernels : public QObject {
    Q_OBJECT

private slots:
    void reportsLevels()
    {
        // The best level is supported, and the scalar set is always there.
        QVERIFY(simd_level_supported(SimdLevel::scalar));
        QVERIFY(simd_level_supported(best_simd_level()));
        QCOMPARE(kernel_set(SimdLevel::scalar).level, SimdLevel::scalar);
        for (SimdLevel l : vector_levels()) QCOMPARE(kernel_set(l).level, l);
        qInfo("best level on this CPU: %s", simd_level_name(best_simd_level()));
    }

    void denseMatvecMatchesScalar()
    {
        std::mt19937 rng(1);
        for (DType dtype : {DType::F32, DType::BF16, DType::F16})
            for (const Shape& s : kShapes) {
                const Matrix m = make_matrix(dtype, s.rows, s.cols, rng);
                const std::vector<float> x = random_floats(s.cols, rng);
                const std::vector<double> mag = magnitudes(m.view, x.data(), 0, 1);
                std::vector<float> want(s.rows, NAN);
                call_matvec(scalar_kernels(), m.view, x.data(), want.data(), 0, s.rows);
                for (SimdLevel l : vector_levels()) {
                    std::vector<float> got(s.rows, NAN);
                    call_matvec(kernel_set(l), m.view, x.data(), got.data(), 0, s.rows);
                    compare(got, want, mag, s.cols, label(l, dtype, s));
                    // A row sub-range writes exactly those rows.
                    if (s.rows >= 3) {
                        std::vector<float> part(s.rows, -7.0f);
                        call_matvec(kernel_set(l), m.view, x.data(), part.data(), 1, s.rows - 1);
                        QCOMPARE(part.front(), -7.0f);
                        QCOMPARE(part.back(), -7.0f);
                        for (int r = 1; r < s.rows - 1; ++r) QCOMPARE(part[r], got[r]);
                    }
                }
            }
    }

    void denseGemmMatchesScalar()
    {
        std::mt19937 rng(2);
        for (DType dtype : {DType::F32, DType::BF16, DType::F16})
            for (const Shape& s : kShapes) {
                const Matrix m = make_matrix(dtype, s.rows, s.cols, rng);
                // Strided activations and outputs, as the forward pass lays them out.
                const int ldx = s.cols + 3, ldy = s.rows + 5;
                const std::vector<float> x = random_floats(static_cast<std::size_t>(s.tokens) * ldx, rng);
                std::vector<float> want(static_cast<std::size_t>(s.tokens) * ldy, 0.0f);
                call_gemm(scalar_kernels(), m.view, x.data(), ldx, s.tokens, want.data(), ldy, 0, s.rows);
                const std::vector<double> mag_dense = magnitudes(m.view, x.data(), ldx, s.tokens);
                std::vector<double> mag(want.size(), 0.0);
                for (int t = 0; t < s.tokens; ++t)
                    for (int r = 0; r < s.rows; ++r)
                        mag[static_cast<std::size_t>(t) * ldy + r] = mag_dense[static_cast<std::size_t>(t) * s.rows + r];
                for (SimdLevel l : vector_levels()) {
                    std::vector<float> got(want.size(), 0.0f);
                    call_gemm(kernel_set(l), m.view, x.data(), ldx, s.tokens, got.data(), ldy, 0, s.rows);
                    compare(got, want, mag, s.cols, "gemm " + label(l, dtype, s));
                }
            }
    }

    void transposedMatvecMatchesScalar()
    {
        std::mt19937 rng(7);
        for (DType dtype : {DType::F32, DType::BF16, DType::F16})
            for (const Shape& s : kShapes) {
                const Matrix m = make_matrix(dtype, s.rows, s.cols, rng);
                const std::vector<float> x = random_floats(s.rows, rng);
                // |W^T| |x| per column: the transposed matrix's magnitudes.
                std::vector<double> mag(s.cols, 0.0);
                for (int r = 0; r < s.rows; ++r)
                    for (int c = 0; c < s.cols; ++c)
                        mag[c] += std::fabs(double(m.f32[static_cast<std::size_t>(r) * s.cols + c])) * 1.01 * std::fabs(x[r]);
                const auto* u = reinterpret_cast<const std::uint16_t*>(m.view.data);
                const auto call = [&](const KernelSet& k, float* y, int cb, int ce) {
                    switch (dtype) {
                    case DType::BF16: k.matvec_t_bf16(u, s.rows, s.cols, x.data(), y, cb, ce); break;
                    case DType::F16: k.matvec_t_f16(u, s.rows, s.cols, x.data(), y, cb, ce); break;
                    default: k.matvec_t_f32(m.f32.data(), s.rows, s.cols, x.data(), y, cb, ce); break;
                    }
                };
                std::vector<float> want(s.cols, NAN);
                call(scalar_kernels(), want.data(), 0, s.cols);
                for (SimdLevel l : vector_levels()) {
                    std::vector<float> got(s.cols, NAN);
                    call(kernel_set(l), got.data(), 0, s.cols);
                    compare(got, want, mag, s.rows, "transposed " + label(l, dtype, s));
                    // A column sub-range starting off a vector boundary writes exactly those columns.
                    if (s.cols >= 3) {
                        std::vector<float> part(s.cols, -7.0f);
                        call(kernel_set(l), part.data(), 1, s.cols - 1);
                        QCOMPARE(part.front(), -7.0f);
                        QCOMPARE(part.back(), -7.0f);
                        std::vector<float> inner(got.begin() + 1, got.end() - 1), pinner(part.begin() + 1, part.end() - 1);
                        std::vector<double> minner(mag.begin() + 1, mag.end() - 1);
                        compare(pinner, inner, minner, s.rows, "transposed range " + label(l, dtype, s));
                    }
                }
            }
    }

    void transposedGemmMatchesScalar()
    {
        // n tokens with padded rows (ldx > rows, ldy > cols); column ranges off the
        // vector boundaries leave the other columns alone.
        std::mt19937 rng(9);
        for (DType dtype : {DType::F32, DType::BF16, DType::F16})
            for (const Shape& s : kShapes) {
                const Matrix m = make_matrix(dtype, s.rows, s.cols, rng);
                const int ldx = s.rows + 3, ldy = s.cols + 2, n = s.tokens;
                const std::vector<float> x = random_floats(static_cast<std::size_t>(n) * ldx, rng);
                std::vector<double> mag(static_cast<std::size_t>(n) * ldy, 0.0);
                for (int t = 0; t < n; ++t)
                    for (int r = 0; r < s.rows; ++r)
                        for (int c = 0; c < s.cols; ++c)
                            mag[static_cast<std::size_t>(t) * ldy + c] +=
                                std::fabs(double(m.f32[static_cast<std::size_t>(r) * s.cols + c])) * 1.01 *
                                std::fabs(x[static_cast<std::size_t>(t) * ldx + r]);
                const auto* u = reinterpret_cast<const std::uint16_t*>(m.view.data);
                const auto call = [&](const KernelSet& k, float* y, int cb, int ce) {
                    switch (dtype) {
                    case DType::BF16: k.gemm_t_bf16(u, s.rows, s.cols, x.data(), ldx, n, y, ldy, cb, ce); break;
                    case DType::F16: k.gemm_t_f16(u, s.rows, s.cols, x.data(), ldx, n, y, ldy, cb, ce); break;
                    default: k.gemm_t_f32(m.f32.data(), s.rows, s.cols, x.data(), ldx, n, y, ldy, cb, ce); break;
                    }
                };
                const int cb = s.cols >= 3 ? 1 : 0, ce = s.cols >= 3 ? s.cols - 1 : s.cols;
                std::vector<float> want(static_cast<std::size_t>(n) * ldy, -7.0f);
                call(scalar_kernels(), want.data(), cb, ce);
                for (SimdLevel l : vector_levels()) {
                    std::vector<float> got(want.size(), -7.0f);
                    call(kernel_set(l), got.data(), cb, ce);
                    compare(got, want, mag, s.rows, "transposed gemm " + label(l, dtype, s));
                }
            }
    }

    void siluMulMatchesScalar()
    {
        // Lengths around the vector widths; gates from -100 to 100 (the vector
        // exp clamps below -87).
        std::mt19937 rng(10);
        for (int n : {1, 7, 8, 17, 33, 1000}) {
            std::vector<float> gate = random_floats(n, rng, 8.0f), up = random_floats(n, rng);
            gate[0] = n > 1 ? -100.0f : 100.0f;
            std::vector<float> want = gate;
            scalar_kernels().silu_mul(want.data(), up.data(), n);
            for (SimdLevel l : vector_levels()) {
                std::vector<float> got = gate;
                kernel_set(l).silu_mul(got.data(), up.data(), n);
                for (int i = 0; i < n; ++i)
                    QVERIFY2(std::fabs(got[i] - want[i]) <= 1e-6f * std::fabs(want[i]) + 1e-30f,
                             qPrintable(QString("%1 n=%2 [%3]: gate %4: %5 vs %6")
                                            .arg(simd_level_name(l)).arg(n).arg(i).arg(gate[i]).arg(got[i]).arg(want[i])));
            }
        }
    }

    void attentionMatchesScalar()
    {
        // V2-Lite's latent geometry (512 + 64), odd ones (37 + 9, 64 + 16); head
        // ranges that start inside the set and leave a partial head group; position
        // ranges that start inside the cache, span several blocks of the online
        // softmax (whose maximum then grows from block to block) or are empty.
        std::mt19937 rng(8);
        struct Geo {
            int heads, dc, dr, n_ctx, hb, he, sb, se;
        };
        const float scale = 0.1f;
        for (const Geo g : {Geo{16, 512, 64, 70, 3, 11, 5, 70}, Geo{4, 37, 9, 5, 0, 4, 0, 5}, Geo{2, 16, 16, 1, 1, 2, 0, 1},
                            Geo{7, 64, 16, 300, 0, 7, 17, 300}, Geo{3, 32, 8, 10, 0, 3, 4, 4}}) {
            const int stride = g.dc + g.dr;
            const std::vector<float> rows = random_floats(static_cast<std::size_t>(g.n_ctx) * stride, rng);
            const std::vector<float> q_lat = random_floats(static_cast<std::size_t>(g.heads) * g.dc, rng);
            const std::vector<float> q_pe = random_floats(static_cast<std::size_t>(g.heads) * g.dr, rng);
            const std::size_t H = static_cast<std::size_t>(g.heads);
            std::vector<float> want_m(H, 0.0f), want_l(H, 0.0f), want_o(H * g.dc, 0.0f);
            const float* base = rows.data();
            const LatentCacheView contiguous = LatentCacheView::contiguous(&base, stride, g.n_ctx);
            // The same rows in blocks of 16 positions stored in reverse order, after
            // another layer's part of each block (as the paged pool lays them out).
            const int bt = 16, n_blocks = (g.n_ctx + bt - 1) / bt;
            const std::size_t layer_offset = static_cast<std::size_t>(bt) * stride;
            std::vector<std::vector<float>> blocks(static_cast<std::size_t>(n_blocks),
                                                   std::vector<float>(2 * layer_offset, NAN));
            std::vector<const float*> bases(static_cast<std::size_t>(n_blocks));
            for (int b = 0; b < n_blocks; ++b) {
                std::vector<float>& blk = blocks[static_cast<std::size_t>(n_blocks - 1 - b)];
                bases[static_cast<std::size_t>(b)] = blk.data();
                for (int s = b * bt; s < std::min(g.n_ctx, (b + 1) * bt); ++s)
                    std::copy_n(rows.data() + static_cast<std::size_t>(s) * stride, stride,
                                blk.data() + layer_offset + static_cast<std::size_t>(s - b * bt) * stride);
            }
            const LatentCacheView paged{bases.data(), layer_offset, bt, stride, g.n_ctx};
            scalar_kernels().attention_partial(q_lat.data(), q_pe.data(), contiguous, g.sb, g.se, g.dc, g.dr,
                                               scale, want_m.data(), want_l.data(), want_o.data(), g.hb, g.he);
            // Error scales: of a score, sum |q| |row|; of an output, max |row|.
            double score_mag = 0.0, row_mag = 0.0;
            for (int h = g.hb; h < g.he; ++h)
                for (int t = g.sb; t < g.se; ++t) {
                    double m = 0.0;
                    for (int c = 0; c < g.dc; ++c) m += std::fabs(q_lat[h * g.dc + c] * rows[t * stride + c]);
                    for (int c = 0; c < g.dr; ++c) m += std::fabs(q_pe[h * g.dr + c] * rows[t * stride + g.dc + c]);
                    score_mag = std::max(score_mag, scale * m);
                }
            for (float v : rows) row_mag = std::max(row_mag, double(std::fabs(v)));
            const double eps = 1.19209290e-7, score_tol = 4.0 * stride * eps * score_mag;
            std::vector<std::pair<SimdLevel, const LatentCacheView*>> runs;
            for (SimdLevel l : vector_levels()) runs.push_back({l, &contiguous});
            runs.push_back({SimdLevel::scalar, &paged});
            for (SimdLevel l : vector_levels()) runs.push_back({l, &paged});
            for (const auto& [l, view] : runs) {
                std::vector<float> m(H, -5.0f), sum(H, -5.0f), o(H * g.dc, -5.0f);
                kernel_set(l).attention_partial(q_lat.data(), q_pe.data(), *view, g.sb, g.se, g.dc, g.dr,
                                                scale, m.data(), sum.data(), o.data(), g.hb, g.he);
                const QString what = QString("%1%5 dc=%2 positions %3..%4").arg(simd_level_name(l)).arg(g.dc).arg(g.sb).arg(g.se)
                                         .arg(view == &paged ? " paged" : "");
                for (std::size_t h = 0; h < H; ++h) {
                    const bool in = static_cast<int>(h) >= g.hb && static_cast<int>(h) < g.he;
                    if (!in) {
                        // Heads outside the range are not touched.
                        QCOMPARE(m[h], -5.0f);
                        continue;
                    }
                    if (g.sb == g.se) {
                        QVERIFY2(std::isinf(m[h]) && m[h] < 0 && sum[h] == 0.0f, qPrintable(what + ": empty range"));
                        for (int c = 0; c < g.dc; ++c) QCOMPARE(o[h * g.dc + c], 0.0f);
                        continue;
                    }
                    QVERIFY2(std::fabs(m[h] - want_m[h]) <= score_tol,
                             qPrintable(what + QString(": max of head %1: %2 vs %3").arg(h).arg(m[h]).arg(want_m[h])));
                    // l and o relative to each set's own maximum: compare l e^m and o / l.
                    const double l_got = sum[h] * std::exp(double(m[h]) - want_m[h]);
                    QVERIFY2(std::fabs(l_got - want_l[h]) <= 1e-5 * want_l[h] + 2.0 * score_tol * want_l[h],
                             qPrintable(what + QString(": sum of head %1: %2 vs %3").arg(h).arg(l_got).arg(want_l[h])));
                    for (int c = 0; c < g.dc; ++c) {
                        const double got_v = o[h * g.dc + c] / sum[h], want_v = want_o[h * g.dc + c] / want_l[h];
                        QVERIFY2(std::fabs(got_v - want_v) <= 1e-5 * row_mag + 2.0 * score_tol * row_mag,
                                 qPrintable(what + QString(": head %1 column %2: %3 vs %4").arg(h).arg(c).arg(got_v).arg(want_v)));
                    }
                }
            }
        }
    }

    void q8QuantisationRoundTrips()
    {
        // Dequantised weights are within half a step (scale / 2) of the originals,
        // and the padding of a partial block is zero (stored as 128).
        std::mt19937 rng(3);
        const int rows = 5, cols = 100;
        const Matrix m = make_matrix(DType::F32, rows, cols, rng);
        Q8Matrix q(rows, cols);
        quantize_q8_rows(m.view, q, 0, rows);
        const Q8View v = q.view();
        QCOMPARE(v.blocks, 2);
        for (int r = 0; r < rows; ++r)
            for (int c = 0; c < v.blocks * kQ8Block; ++c) {
                const int b = c / kQ8Block;
                const float scale = v.scales[r * v.blocks + b];
                const int qv = int(v.q[static_cast<std::size_t>(r) * v.blocks * kQ8Block + c]) - 128;
                QVERIFY(qv >= -127 && qv <= 127);
                if (c >= cols) {
                    QCOMPARE(qv, 0);
                    continue;
                }
                QVERIFY(std::fabs(qv * scale - m.f32[r * cols + c]) <= 0.5f * scale * 1.0001f);
            }
        // An all-zero block gets scale 0 and values 0, not NaN.
        std::vector<float> zeros(70, 0.0f);
        const WeightView zv{reinterpret_cast<const std::byte*>(zeros.data()), DType::F32, 1, 70};
        Q8Matrix qz(1, 70);
        quantize_q8_rows(zv, qz, 0, 1);
        QCOMPARE(qz.view().scales[0], 0.0f);
        QCOMPARE(int(qz.view().q[0]), 128);
    }

    void q8KernelsMatchScalar()
    {
        // The integer dot products are exact in every set; only the f32 sum of
        // the scaled block results differs in order, bounded like a dense dot
        // product over `blocks` terms of size |scale_w scale_x dot_b|.
        std::mt19937 rng(4);
        for (DType dtype : {DType::F32, DType::BF16})
            for (const Shape& s : kShapes) {
                const Matrix m = make_matrix(dtype, s.rows, s.cols, rng);
                Q8Matrix q(s.rows, s.cols);
                quantize_q8_rows(m.view, q, 0, s.rows);
                const int ldx = s.cols + 1;
                const std::vector<float> x = random_floats(static_cast<std::size_t>(s.tokens) * ldx, rng);
                Q8Activations xa;
                quantize_activations(x.data(), ldx, s.tokens, s.cols, xa);
                const std::vector<double> mag_dense = magnitudes(m.view, x.data(), ldx, s.tokens);

                const int ldy = s.rows + 2;
                std::vector<float> want(static_cast<std::size_t>(s.tokens) * ldy, 0.0f);
                scalar_kernels().gemm_q8(q.view(), xa, want.data(), ldy, 0, s.rows);
                std::vector<double> mag(want.size(), 0.0);
                for (int t = 0; t < s.tokens; ++t)
                    for (int r = 0; r < s.rows; ++r)
                        mag[static_cast<std::size_t>(t) * ldy + r] = mag_dense[static_cast<std::size_t>(t) * s.rows + r];
                // The quantised product approximates the dense one: 8-bit steps on
                // both sides give a relative error of about 2/127 of sum|w||x|.
                std::vector<float> dense(static_cast<std::size_t>(s.tokens) * ldy, 0.0f);
                call_gemm(scalar_kernels(), m.view, x.data(), ldx, s.tokens, dense.data(), ldy, 0, s.rows);
                for (int t = 0; t < s.tokens; ++t)
                    for (int r = 0; r < s.rows; ++r) {
                        const std::size_t i = static_cast<std::size_t>(t) * ldy + r;
                        QVERIFY2(std::fabs(want[i] - dense[i]) <= 2.0 / 127.0 * mag[i] + 1e-6,
                                 qPrintable(QString("q8 vs dense at %1: %2 vs %3").arg(i).arg(want[i]).arg(dense[i])));
                    }

                for (SimdLevel l : vector_levels()) {
                    std::vector<float> got(want.size(), 0.0f);
                    kernel_set(l).gemm_q8(q.view(), xa, got.data(), ldy, 0, s.rows);
                    compare(got, want, mag, s.cols, "q8 gemm " + label(l, dtype, s));
                    // matvec_q8 reads vector 0 only.
                    std::vector<float> one(s.rows, NAN), one_want(s.rows, NAN);
                    kernel_set(l).matvec_q8(q.view(), xa, one.data(), 0, s.rows);
                    scalar_kernels().matvec_q8(q.view(), xa, one_want.data(), 0, s.rows);
                    std::vector<double> mag0(mag_dense.begin(), mag_dense.begin() + s.rows);
                    compare(one, one_want, mag0, s.cols, "q8 matvec " + label(l, dtype, s));
                }
            }
    }

    void activationQuantisationIsReused()
    {
        // Requantising a smaller batch into the same buffers gives the same result
        // as into fresh ones (stale data from the larger batch must not leak in).
        std::mt19937 rng(5);
        const std::vector<float> big = random_floats(4 * 300, rng);
        const std::vector<float> small = random_floats(130, rng);
        Q8Activations reused, fresh;
        quantize_activations(big.data(), 300, 4, 300, reused);
        quantize_activations(small.data(), 130, 1, 130, reused);
        quantize_activations(small.data(), 130, 1, 130, fresh);
        QCOMPARE(reused.blocks, 3);
        for (int i = 0; i < 3 * kQ8Block; ++i) QCOMPARE(reused.q[i], fresh.q[i]);
        for (int b = 0; b < 3; ++b) {
            QCOMPARE(reused.scale[b], fresh.scale[b]);
            QCOMPARE(reused.offset[b], fresh.offset[b]);
        }
    }

    void dispatchFollowsTheActiveLevel()
    {
        std::mt19937 rng(6);
        const Matrix m = make_matrix(DType::BF16, 6, 37, rng);
        const std::vector<float> x = random_floats(37, rng);
        std::vector<float> want(6), got(6);
        call_matvec(scalar_kernels(), m.view, x.data(), want.data(), 0, 6);
        const SimdLevel saved = active_simd_level();
        set_simd_level(SimdLevel::scalar);
        QCOMPARE(active_simd_level(), SimdLevel::scalar);
        matvec_rows(m.view, x.data(), got.data(), 0, 6);
        QCOMPARE(got, want);  // the same function, bit for bit
        set_simd_level(saved);
        QCOMPARE(active_simd_level(), saved);
    }
};

QTEST_GUILESS_MAIN(TestSimdKernels)
#include "test_simd_kernels.moc"
