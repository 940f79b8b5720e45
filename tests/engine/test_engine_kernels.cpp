// Each CPU kernel, through the backend interface (so the thread pool is used for
// the large cases), against its plain scalar twin in engine/cpu/ref/.
#include <QTest>

#include <cmath>
#include <cstring>
#include <random>

#include "backend/backend.h"
#include "cpu/ref/ref_kernels.h"
#include "cpu/thread_pool.h"
#include "moelens/safetensors.h"
#include "model/rope_table.h"

using namespace moelens;

namespace {

std::vector<float> random_vec(std::size_t n, std::mt19937& rng, float scale = 1.0f)
{
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

// A weight matrix stored in `dtype`, from f32 values.
struct StoredWeight {
    std::vector<std::byte> bytes;
    WeightView view;
};

StoredWeight store(const std::vector<float>& v, int rows, int cols, DType dtype)
{
    StoredWeight w;
    w.bytes.resize(v.size() * dtype_size(dtype));
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (dtype == DType::F32) {
            std::memcpy(w.bytes.data() + 4 * i, &v[i], 4);
        } else {
            std::uint16_t h;
            if (dtype == DType::BF16) {
                h = f32_to_bf16(v[i]);
            } else {  // F16 via round-trip search-free conversion: values here are small normals
                const float f = v[i];
                std::uint32_t bits;
                std::memcpy(&bits, &f, 4);
                const std::uint32_t sign = (bits >> 16) & 0x8000;
                const int exp = static_cast<int>((bits >> 23) & 0xff) - 127 + 15;
                h = exp <= 0 ? static_cast<std::uint16_t>(sign)
                             : static_cast<std::uint16_t>(sign | (exp << 10) | ((bits >> 13) & 0x3ff));
            }
            std::memcpy(w.bytes.data() + 2 * i, &h, 2);
        }
    }
    w.view = WeightView{w.bytes.data(), dtype, rows, cols};
    return w;
}

// |got - want| <= atol + rtol * |want|, reporting the first offender.
void expect_close(const float* got, const float* want, std::size_t n, double atol, double rtol, const char* what)
{
    for (std::size_t i = 0; i < n; ++i) {
        const double tol = atol + rtol * std::abs(double(want[i]));
        if (!(std::abs(double(got[i]) - double(want[i])) <= tol))
            QFAIL(qPrintable(QString("%1[%2]: got %3, want %4 (tolerance %5)").arg(what).arg(i).arg(got[i]).arg(want[i]).arg(tol)));
    }
}

}  // namespace

class TestEngineKernels : public QObject {
    Q_OBJECT

private:
    std::unique_ptr<Backend> m_be = make_cpu_backend(3);
    std::mt19937 m_rng{1234};

private slots:
    void thread_pool_covers_range_once()
    {
        ThreadPool pool(4);
        for (int n : {1, 3, 4, 5, 17, 1000}) {
            for (int grain : {1, 16}) {
                std::vector<int> hits(n, 0);
                pool.parallel_for(n, [&](int b, int e) {
                    for (int i = b; i < e; ++i) ++hits[i];
                }, grain);
                for (int i = 0; i < n; ++i) QCOMPARE(hits[i], 1);
            }
        }
    }

    void matvec_data()
    {
        QTest::addColumn<int>("dtype");
        QTest::addColumn<int>("rows");
        QTest::addColumn<int>("cols");
        for (DType t : {DType::F32, DType::F16, DType::BF16})
            for (auto [r, c] : {std::pair{1, 1}, {7, 13}, {37, 53}, {333, 1001}})
                QTest::newRow(qPrintable(QString("%1 %2x%3").arg(dtype_name(t)).arg(r).arg(c))) << int(t) << r << c;
    }
    void matvec()
    {
        QFETCH(int, dtype);
        QFETCH(int, rows);
        QFETCH(int, cols);
        const auto w = store(random_vec(std::size_t(rows) * cols, m_rng), rows, cols, DType(dtype));
        const auto x = random_vec(cols, m_rng);
        std::vector<float> got(rows), want(rows);
        m_be->matvec(w.view, x.data(), got.data());
        ref::matvec(w.view, x.data(), want.data());
        // f32 accumulation vs double: error grows like sqrt(cols) x eps x |terms|.
        expect_close(got.data(), want.data(), rows, 1e-5 * std::sqrt(double(cols)), 1e-5, "matvec");

        const auto xt = random_vec(rows, m_rng);
        std::vector<float> gt(cols), wt(cols);
        m_be->matvec_transposed(w.view, xt.data(), gt.data());
        ref::matvec_transposed(w.view, xt.data(), wt.data());
        expect_close(gt.data(), wt.data(), cols, 1e-5 * std::sqrt(double(rows)), 1e-5, "matvec_transposed");

        std::vector<float> row(cols);
        m_be->embedding(w.view, rows - 1, row.data());
        for (int c = 0; c < cols; ++c) QCOMPARE(row[c], ref::weight_at(w.view, rows - 1, c));
    }

    void f16_conversion()
    {
        QCOMPARE(f16_to_f32(0x3c00), 1.0f);
        QCOMPARE(f16_to_f32(0xc000), -2.0f);
        QCOMPARE(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
        QCOMPARE(f16_to_f32(0x7bff), 65504.0f);
        QVERIFY(std::isinf(f16_to_f32(0x7c00)));
        QCOMPARE(bf16_to_f32(f32_to_bf16(1.5f)), 1.5f);
        QCOMPARE(f32_to_bf16(1.00390625f), std::uint16_t(0x3f80));  // tie rounds to even
    }

    void rmsnorm()
    {
        for (int n : {1, 31, 96, 5120}) {
            const auto x = random_vec(n, m_rng, 3.0f);
            const auto w = random_vec(n, m_rng);
            std::vector<float> got(n), want(n);
            m_be->rmsnorm(x.data(), w.data(), n, 1e-6f, got.data());
            ref::rmsnorm(x.data(), w.data(), n, 1e-6f, want.data());
            expect_close(got.data(), want.data(), n, 1e-6, 1e-6, "rmsnorm");
        }
    }

    void rope_interleaved()
    {
        const int dr = 8, heads = 3, stride = 24;
        ModelConfig c;
        c.qk_rope_head_dim = dr;
        c.qk_nope_head_dim = 16;
        c.rope_theta = 10000.0;
        const RopeFrequencies f = rope_frequencies(c);
        std::vector<float> cs(dr / 2), sn(dr / 2);
        rope_cos_sin(f, 37, cs.data(), sn.data());
        auto x = random_vec(std::size_t(heads) * stride, m_rng);
        auto want = x;
        m_be->rope(x.data() + 16, heads, stride, dr, cs.data(), sn.data());
        ref::rope(want.data() + 16, heads, stride, dr, cs.data(), sn.data());
        expect_close(x.data(), want.data(), x.size(), 1e-6, 1e-6, "rope");
        // Pair i is (x[2i], x[2i+1]) rotated by 37 * theta^(-2i/dr).
        const double angle = 37.0 * std::pow(10000.0, -2.0 / dr);
        QVERIFY(std::abs(cs[1] - std::cos(angle)) < 1e-6);
    }

    void yarn_worked_values()
    {
        // tests/fixtures/golden/README.md: v2 inv_freq and softmax_scale, lite softmax_scale.
        ModelConfig v2;
        v2.qk_rope_head_dim = 16;
        v2.qk_nope_head_dim = 16;
        v2.rope_theta = 1000.0;
        v2.has_yarn = true;
        v2.yarn = YarnScaling{4.0, 16, 32.0, 1.0, 0.707, 0.707};
        const RopeFrequencies f = rope_frequencies(v2);
        const double want[] = {1, 0.26356, 0.044457, 0.0187474, 0.00790569, 0.0033338, 0.00140585, 0.000592843};
        for (int i = 0; i < 8; ++i) QVERIFY2(std::abs(f.inv_freq[i] - want[i]) < 1e-5 * want[i] + 1e-9, qPrintable(QString::number(i)));
        QVERIFY(std::abs(f.softmax_scale - 0.2131270) < 1e-6);
        QCOMPARE(f.cos_sin_scale, 1.0f);
        ModelConfig lite;
        lite.qk_rope_head_dim = 8;
        lite.qk_nope_head_dim = 16;
        QVERIFY(std::abs(rope_frequencies(lite).softmax_scale - 0.2041241) < 1e-6);
    }

    void softmax_and_silu()
    {
        for (int n : {1, 2, 16, 160, 4099}) {
            auto x = random_vec(n, m_rng, 5.0f);
            auto want = x;
            m_be->softmax(x.data(), n);
            ref::softmax(want.data(), n);
            expect_close(x.data(), want.data(), n, 1e-7, 1e-5, "softmax");
            auto g = random_vec(n, m_rng, 4.0f);
            const auto u = random_vec(n, m_rng);
            auto gw = g;
            m_be->silu_mul(g.data(), u.data(), n);
            ref::silu_mul(gw.data(), u.data(), n);
            expect_close(g.data(), gw.data(), n, 1e-6, 1e-5, "silu_mul");
        }
    }

    void moe_route_data()
    {
        QTest::addColumn<int>("method");
        QTest::addColumn<int>("experts");
        QTest::addColumn<int>("top_k");
        QTest::addColumn<int>("groups");
        QTest::addColumn<int>("topk_group");
        QTest::addColumn<bool>("norm");
        QTest::newRow("greedy 8/2") << int(TopkMethod::greedy) << 8 << 2 << 1 << 1 << false;
        QTest::newRow("greedy 64/6 norm") << int(TopkMethod::greedy) << 64 << 6 << 1 << 1 << true;
        QTest::newRow("group 16/3 4g keep 2") << int(TopkMethod::group_limited_greedy) << 16 << 3 << 4 << 2 << false;
        QTest::newRow("group 160/6 8g keep 3") << int(TopkMethod::group_limited_greedy) << 160 << 6 << 8 << 3 << false;
        QTest::newRow("group 15/4 5g keep 2") << int(TopkMethod::group_limited_greedy) << 15 << 4 << 5 << 2 << false;
    }
    void moe_route()
    {
        QFETCH(int, method);
        QFETCH(int, experts);
        QFETCH(int, top_k);
        QFETCH(int, groups);
        QFETCH(int, topk_group);
        QFETCH(bool, norm);
        const bool grouped = TopkMethod(method) == TopkMethod::group_limited_greedy;
        const RouteParams p{experts, top_k, grouped ? 1 : 0, groups, topk_group, norm ? 1 : 0, 16.0f};
        std::vector<float> scratch(experts + groups);
        for (int trial = 0; trial < 200; ++trial) {
            auto probs = random_vec(experts, m_rng, 2.0f);
            ref::softmax(probs.data(), experts);
            std::vector<int> ids(top_k), ref_ids(top_k);
            std::vector<float> w(top_k), ref_w(top_k);
            // Odd trials switch experts off (what-if routing), each with p = 1/4,
            // where enough stay for top_k in any topk_group groups.
            std::vector<std::uint8_t> off;
            if (trial % 2) {
                off.resize(experts);
                for (auto& o : off) o = (m_rng() % 4) == 0;
                std::vector<int> enabled(groups, 0);
                for (int e = 0; e < experts; ++e) enabled[e / (experts / groups)] += !off[e];
                std::erase(enabled, 0);
                std::sort(enabled.begin(), enabled.end());
                int least = 0;
                for (int g = 0; g < std::min<int>(topk_group, enabled.size()); ++g) least += enabled[g];
                if (least < top_k) continue;
            }
            const std::uint8_t* mask = off.empty() ? nullptr : off.data();
            m_be->moe_route(probs.data(), p, mask, ids.data(), w.data(), scratch.data());
            ref::moe_route(probs.data(), p, ref_ids.data(), ref_w.data(), mask);
            QCOMPARE(ids, ref_ids);
            for (int e : ids) QVERIFY(!mask || !mask[e]);
            expect_close(w.data(), ref_w.data(), top_k, 1e-7, 1e-6, "routing weight");
            if (p.group_limited) {
                // At most topk_group distinct groups are used.
                std::vector<bool> used(groups, false);
                for (int e : ids) used[e / (experts / groups)] = true;
                QVERIFY(std::count(used.begin(), used.end(), true) <= topk_group);
            }
        }
    }

    void attention_mla_data()
    {
        QTest::addColumn<int>("heads");
        QTest::addColumn<int>("n_ctx");
        QTest::newRow("4 heads, 1 token") << 4 << 1;
        QTest::newRow("4 heads, 37 tokens") << 4 << 37;
        QTest::newRow("16 heads, 300 tokens (pool)") << 16 << 300;
    }
    void attention_mla()
    {
        QFETCH(int, heads);
        QFETCH(int, n_ctx);
        const MlaDims d{heads, 32, 16, 8, 12, 0.2f};
        const int stride = d.kv_lora + d.dr;
        const auto cache_rows = random_vec(std::size_t(n_ctx) * stride, m_rng);
        const float* base = cache_rows.data();
        const LatentCacheView cache = LatentCacheView::contiguous(&base, stride, n_ctx);
        std::vector<float> scores(std::size_t(heads) * n_ctx);

        const auto q_lat = random_vec(std::size_t(heads) * d.kv_lora, m_rng);
        const auto q_pe = random_vec(std::size_t(heads) * d.dr, m_rng);
        std::vector<float> got(std::size_t(heads) * d.kv_lora), want(got.size());
        m_be->attention_mla_absorbed(q_lat.data(), q_pe.data(), cache, d, got.data());
        ref::attention_mla_absorbed(q_lat.data(), q_pe.data(), cache, d, want.data());
        expect_close(got.data(), want.data(), got.size(), 1e-5, 1e-4, "attention_mla_absorbed");

        const auto q = random_vec(std::size_t(heads) * (d.dn + d.dr), m_rng);
        const auto kv = random_vec(std::size_t(n_ctx) * heads * (d.dn + d.dv), m_rng);
        std::vector<float> out(std::size_t(heads) * d.dv), out_ref(out.size());
        m_be->attention_mla_naive(q.data(), kv.data(), cache, d, scores.data(), out.data());
        ref::attention_mla_naive(q.data(), kv.data(), cache, d, out_ref.data());
        expect_close(out.data(), out_ref.data(), out.size(), 1e-5, 1e-4, "attention_mla_naive");
    }

    // Absorption is exact algebra: with kv = W_UKV c, naive attention equals
    // W_UV_h (absorbed attention with q_lat_h = W_UK_h^T q_nope_h).
    void absorbed_equals_naive()
    {
        const int H = 3, n_ctx = 20;
        const MlaDims d{H, 24, 16, 8, 12, 0.25f};
        const int stride = d.kv_lora + d.dr;
        const auto rows = random_vec(std::size_t(n_ctx) * stride, m_rng);
        const float* base = rows.data();
        const LatentCacheView cache = LatentCacheView::contiguous(&base, stride, n_ctx);
        const auto kv_b = store(random_vec(std::size_t(H) * (d.dn + d.dv) * d.kv_lora, m_rng, 0.2f), H * (d.dn + d.dv), d.kv_lora, DType::F32);
        const auto q = random_vec(std::size_t(H) * (d.dn + d.dr), m_rng);
        std::vector<float> scores(std::size_t(H) * n_ctx);

        std::vector<float> kv(std::size_t(n_ctx) * H * (d.dn + d.dv));
        for (int s = 0; s < n_ctx; ++s) m_be->matvec(kv_b.view, rows.data() + s * stride, kv.data() + s * H * (d.dn + d.dv));
        std::vector<float> naive(std::size_t(H) * d.dv);
        m_be->attention_mla_naive(q.data(), kv.data(), cache, d, scores.data(), naive.data());

        std::vector<float> q_lat(std::size_t(H) * d.kv_lora), q_pe(std::size_t(H) * d.dr), out_lat(q_lat.size()), absorbed(naive.size());
        for (int h = 0; h < H; ++h) {
            m_be->matvec_transposed(kv_b.view.row_slice(h * (d.dn + d.dv), d.dn), q.data() + h * (d.dn + d.dr), q_lat.data() + h * d.kv_lora);
            std::copy_n(q.data() + h * (d.dn + d.dr) + d.dn, d.dr, q_pe.data() + h * d.dr);
        }
        m_be->attention_mla_absorbed(q_lat.data(), q_pe.data(), cache, d, out_lat.data());
        for (int h = 0; h < H; ++h)
            m_be->matvec(kv_b.view.row_slice(h * (d.dn + d.dv) + d.dn, d.dv), out_lat.data() + h * d.kv_lora, absorbed.data() + h * d.dv);
        expect_close(absorbed.data(), naive.data(), naive.size(), 1e-5, 1e-4, "absorbed vs naive");
    }
};

QTEST_GUILESS_MAIN(TestEngineKernels)
#include "test_engine_kernels.moc"
