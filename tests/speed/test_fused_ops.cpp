// The CPU backend's fused decode operations (matvec_multi: several products of
// one input in one job; ffn_sum: shared and routed experts as one weighted sum
// in two jobs) against the same products made one at a time, for F32, BF16 and
// int8 weights, with widths that are and are not whole q8 blocks (int8: the
// threads quantise their own rows of the hidden activations, or the caller does).
// And its batched prefill attention operations against the per-token ones.
#include <QTest>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "cpu/simd/q8.h"
#include "moelens/safetensors.h"

using namespace moelens;

namespace {

// A matrix of random normals in one dtype (int8: quantised from f32 to q8).
struct Matrix {
    std::vector<float> f32;
    std::vector<std::uint16_t> bf16;
    cpu::simd::Q8Matrix q8;
    WeightView view;
};

std::unique_ptr<Matrix> make(DType dtype, int rows, int cols, std::mt19937& rng, float scale)
{
    auto m = std::make_unique<Matrix>();
    std::normal_distribution<float> dist(0.0f, scale);
    m->f32.resize(static_cast<std::size_t>(rows) * cols);
    for (float& v : m->f32) v = dist(rng);
    const WeightView f32{reinterpret_cast<const std::byte*>(m->f32.data()), DType::F32, rows, cols};
    if (dtype == DType::F32) {
        m->view = f32;
    } else if (dtype == DType::BF16) {
        m->bf16.resize(m->f32.size());
        for (std::size_t i = 0; i < m->f32.size(); ++i) m->bf16[i] = f32_to_bf16(m->f32[i]);
        m->view = {reinterpret_cast<const std::byte*>(m->bf16.data()), DType::BF16, rows, cols};
    } else {
        m->q8 = cpu::simd::Q8Matrix(rows, cols);
        cpu::simd::quantize_q8_rows(f32, m->q8, 0, rows);
        m->view = {reinterpret_cast<const std::byte*>(m->q8.values()), DType::U8, rows, cols, m->q8.scales()};
    }
    return m;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want, const std::string& what)
{
    QCOMPARE(got.size(), want.size());
    double scale = 0.0;
    for (float v : want) scale = std::max(scale, double(std::fabs(v)));
    for (std::size_t i = 0; i < got.size(); ++i)
        if (!(std::fabs(double(got[i]) - want[i]) <= 1e-5 * scale + 1e-30))
            QFAIL(qPrintable(QString("%1[%2]: got %3, want %4").arg(QString::fromStdString(what)).arg(i).arg(got[i]).arg(want[i])));
}

}  // namespace

class TestFusedOps : public QObject {
    Q_OBJECT

private:
    std::unique_ptr<Backend> m_be = make_cpu_backend(3);
    std::mt19937 m_rng{77};

private slots:
    void matvecMultiMatchesOneByOne_data()
    {
        QTest::addColumn<int>("dtype");
        QTest::addColumn<int>("cols");
        QTest::newRow("f32, small (one thread)") << int(DType::F32) << 24;
        QTest::newRow("bf16") << int(DType::BF16) << 256;
        QTest::newRow("int8") << int(DType::U8) << 320;
        QTest::newRow("int8, partial block") << int(DType::U8) << 200;
    }
    void matvecMultiMatchesOneByOne()
    {
        QFETCH(int, dtype);
        QFETCH(int, cols);
        const int rows[] = {96, 37, 130};
        std::vector<std::unique_ptr<Matrix>> ms;
        const WeightView* w[3];
        for (int i = 0; i < 3; ++i) {
            ms.push_back(make(static_cast<DType>(dtype), rows[i], cols, m_rng, 0.5f));
            w[i] = &ms.back()->view;
        }
        std::normal_distribution<float> dist(0.0f, 1.0f);
        std::vector<float> x(cols);
        for (float& v : x) v = dist(m_rng);
        std::vector<float> got[3], want[3];
        float* y[3];
        for (int i = 0; i < 3; ++i) {
            got[i].assign(rows[i], -1.0f);
            want[i].assign(rows[i], -2.0f);
            y[i] = got[i].data();
            m_be->matvec(*w[i], x.data(), want[i].data());
        }
        m_be->matvec_multi(w, y, 3, x.data());
        for (int i = 0; i < 3; ++i) expect_close(got[i], want[i], "matvec_multi product " + std::to_string(i));
    }

    void ffnSumMatchesOneByOne_data()
    {
        QTest::addColumn<int>("dtype");
        QTest::addColumn<int>("hidden");
        QTest::addColumn<int>("width");
        QTest::newRow("f32, tiny (one thread)") << int(DType::F32) << 16 << 8;
        QTest::newRow("bf16") << int(DType::BF16) << 256 << 96;
        QTest::newRow("int8, whole blocks") << int(DType::U8) << 256 << 128;
        QTest::newRow("int8, partial blocks") << int(DType::U8) << 192 << 72;
    }
    void ffnSumMatchesOneByOne()
    {
        QFETCH(int, dtype);
        QFETCH(int, hidden);
        QFETCH(int, width);
        // A double-width "shared" term and three routed ones, as DeepSeekMoE.
        const int widths[] = {2 * width, width, width, width};
        const float weights[] = {1.0f, 0.5f, 0.3f, 0.2f};
        const int n = 4;
        std::vector<std::unique_ptr<Matrix>> ms;
        std::vector<FfnTerm> terms(n);
        for (int i = 0; i < n; ++i) {
            ms.push_back(make(static_cast<DType>(dtype), widths[i], hidden, m_rng, 0.3f));
            terms[i].gate = &ms.back()->view;
            ms.push_back(make(static_cast<DType>(dtype), widths[i], hidden, m_rng, 0.3f));
            terms[i].up = &ms.back()->view;
            ms.push_back(make(static_cast<DType>(dtype), hidden, widths[i], m_rng, 0.3f));
            terms[i].down = &ms.back()->view;
            terms[i].weight = weights[i];
        }
        std::normal_distribution<float> dist(0.0f, 1.0f);
        std::vector<float> x(hidden);
        for (float& v : x) v = dist(m_rng);

        std::vector<float> want(hidden, 0.0f), g, u, tmp(hidden);
        for (int i = 0; i < n; ++i) {
            g.assign(widths[i], 0.0f);
            u.assign(widths[i], 0.0f);
            m_be->matvec(*terms[i].gate, x.data(), g.data());
            m_be->matvec(*terms[i].up, x.data(), u.data());
            m_be->silu_mul(g.data(), u.data(), widths[i]);
            m_be->matvec(*terms[i].down, g.data(), tmp.data());
            m_be->axpy(want.data(), weights[i], tmp.data(), hidden);
        }
        int total = 0;
        for (int w : widths) total += w;
        std::vector<float> scratch(2 * static_cast<std::size_t>(total) + hidden, -3.0f), got(hidden, -4.0f);
        m_be->ffn_sum(terms.data(), n, x.data(), got.data(), scratch.data());
        expect_close(got, want, "ffn_sum");
    }

    void batchedAttentionMatchesPerToken()
    {
        // 3 heads, latent 40, rope 8, nope 12, v 10; 9 tokens after 70 cached
        // positions (the latest tokens span more than one thread's share).
        const MlaDims d{3, 40, 12, 8, 10, 0.3f};
        const int H = d.n_heads, n = 9, pos0 = 70, n_ctx = pos0 + n, stride = d.kv_lora + d.dr;
        std::normal_distribution<float> dist(0.0f, 1.0f);
        const auto randoms = [&](std::size_t k) {
            std::vector<float> v(k);
            for (float& f : v) f = dist(m_rng);
            return v;
        };
        const auto rows = randoms(static_cast<std::size_t>(n_ctx) * stride);
        const float* base = rows.data();
        // Row t attends over positions [0, pos0 + t]; the rows op takes one view per row.
        std::vector<LatentCacheView> views;
        for (int t = 0; t < n; ++t) views.push_back(LatentCacheView::contiguous(&base, stride, pos0 + t + 1));
        const auto kv_b = make(DType::BF16, H * (d.dn + d.dv), d.kv_lora, m_rng, 0.3f);
        const int q_row = H * (d.dn + d.dr) + 5;  // padded rows
        const auto q = randoms(static_cast<std::size_t>(n) * q_row);
        const auto q_pe = randoms(static_cast<std::size_t>(n) * H * d.dr);
        const std::size_t lat = static_cast<std::size_t>(H) * d.kv_lora;

        std::vector<float> q_lat(n * lat, -1.0f), want_q_lat(n * lat, -2.0f);
        m_be->absorb_query_batch(kv_b->view, q.data(), n, q_row, H, d.dn + d.dr, d.dn, d.dv, q_lat.data());
        std::vector<float> out_lat(n * lat, -1.0f), want_out(n * lat, -2.0f);
        m_be->attention_mla_absorbed_rows(q_lat.data(), q_pe.data(), n, views.data(), d, out_lat.data());
        std::vector<float> o(static_cast<std::size_t>(n) * H * d.dv, -1.0f), want_o(o.size(), -2.0f);
        m_be->absorb_output_batch(kv_b->view, out_lat.data(), n, H, d.dn, d.dv, o.data());
        for (int t = 0; t < n; ++t) {
            m_be->absorb_query(kv_b->view, q.data() + static_cast<std::size_t>(t) * q_row, H, d.dn + d.dr, d.dn, d.dv,
                               want_q_lat.data() + t * lat);
            m_be->attention_mla_absorbed(q_lat.data() + t * lat, q_pe.data() + static_cast<std::size_t>(t) * H * d.dr,
                                         views[static_cast<std::size_t>(t)], d, want_out.data() + t * lat);
            m_be->absorb_output(kv_b->view, out_lat.data() + t * lat, H, d.dn, d.dv,
                                want_o.data() + static_cast<std::size_t>(t) * H * d.dv);
        }
        expect_close(q_lat, want_q_lat, "absorb_query_batch");
        expect_close(out_lat, want_out, "attention_mla_absorbed_rows");
        expect_close(o, want_o, "absorb_output_batch");
    }
};

QTEST_GUILESS_MAIN(TestFusedOps)
#include "test_fused_ops.moc"
