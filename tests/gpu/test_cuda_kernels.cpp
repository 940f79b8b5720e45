// Each CUDA kernel of engine/cuda/kernels against its CPU twin (engine/cpu/ref,
// or a plain loop here where the CPU has no such op), on random data and on the
// shapes that break kernels: sizes that are not a multiple of the block, one
// token, exact ties in the router. Skips (with the reason) without a GPU.
#include <QTest>

#include <cuda_fp16.h>

#include <algorithm>
#include <cstring>
#include <numeric>

#include "cpu/ref/ref_kernels.h"
#include "cuda/kernels/cublas_gemm.h"
#include "cuda/kernels/matmul.h"
#include "cuda/kernels/moe_gate.h"
#include "cuda/kernels/moe_permute.h"
#include "cuda/kernels/rmsnorm.h"
#include "cuda/kernels/rope_yarn.h"
#include "cuda/kernels/silu_mul.h"
#include "cuda/kernels/vector_ops.h"
#include "gpu_test_util.h"
#include "moelens/safetensors.h"
#include "model/rope_table.h"

using namespace moelens;
using cuda::DeviceBuffer;
using gpu_test::random_vec;
using gpu_test::to_device;
using gpu_test::to_host;

namespace {

// f32 values stored as `type`, as host bytes plus a WeightView for the CPU twin.
struct HostWeight {
    std::vector<std::byte> bytes;
    WeightView view;
    cuda::ElemType type;
};

HostWeight store(const std::vector<float>& v, int rows, int cols, cuda::ElemType type)
{
    HostWeight w;
    w.type = type;
    const std::size_t es = cuda::elem_size(type);
    w.bytes.resize(v.size() * es);
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (type == cuda::ElemType::f32) {
            std::memcpy(w.bytes.data() + 4 * i, &v[i], 4);
        } else {
            const std::uint16_t h = type == cuda::ElemType::bf16 ? f32_to_bf16(v[i]) : __half_as_ushort(__float2half_rn(v[i]));
            std::memcpy(w.bytes.data() + 2 * i, &h, 2);
        }
    }
    const DType dt = type == cuda::ElemType::f32 ? DType::F32 : type == cuda::ElemType::bf16 ? DType::BF16 : DType::F16;
    w.view = WeightView{w.bytes.data(), dt, rows, cols};
    return w;
}

// Sum of |w||x| per output: the scale a rounding error of an f32 dot product is relative to.
std::vector<float> abs_dot(const WeightView& w, const float* x)
{
    std::vector<float> out(w.rows);
    for (int r = 0; r < w.rows; ++r) {
        double s = 0.0;
        for (int c = 0; c < w.cols; ++c) s += std::fabs(double(ref::weight_at(w, r, c)) * x[c]);
        out[r] = static_cast<float>(s);
    }
    return out;
}

// f32 accumulation in a different order than the double twin: allow a few ulp
// of the sum of magnitudes.
void compare_dots(const std::vector<float>& got, const std::vector<float>& want, const std::vector<float>& mag,
                  const std::string& what)
{
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double tol = 1e-5 * mag[i] + 1e-6;
        if (!(std::fabs(double(got[i]) - want[i]) <= tol)) {
            const std::string m = what + ": output " + std::to_string(i) + " is " + std::to_string(got[i]) +
                                  ", expected " + std::to_string(want[i]) + " (tolerance " + std::to_string(tol) + ")";
            QFAIL(m.c_str());
        }
    }
}

}  // namespace

class TestCudaKernels : public QObject {
    Q_OBJECT

private slots:
    void initTestCase()
    {
        const std::string why = gpu_test::why_no_gpu();
        if (!why.empty()) QSKIP(why.c_str());
    }

    void rmsnorm_matches_twin_data()
    {
        QTest::addColumn<int>("rows");
        QTest::addColumn<int>("n");
        QTest::newRow("1x1") << 1 << 1;
        QTest::newRow("1x255 (under one block)") << 1 << 255;
        QTest::newRow("3x257 (one past the block)") << 3 << 257;
        QTest::newRow("4x2048 (V2-Lite hidden)") << 4 << 2048;
        QTest::newRow("2x5120 (V2 hidden)") << 2 << 5120;
    }
    void rmsnorm_matches_twin()
    {
        QFETCH(int, rows);
        QFETCH(int, n);
        std::mt19937 rng(rows * 7919 + n);
        const auto x = random_vec(static_cast<std::size_t>(rows) * n, rng, 3.0f);
        const auto w = random_vec(n, rng);
        std::vector<float> want(x.size());
        for (int r = 0; r < rows; ++r) ref::rmsnorm(x.data() + r * n, w.data(), n, 1e-6f, want.data() + r * n);
        auto dx = to_device(x);
        auto dw = to_device(w);
        DeviceBuffer<float> dy(x.size());
        cuda::rmsnorm(dx.get(), dw.get(), rows, n, 1e-6f, dy.get(), nullptr);
        GPU_COMPARE(to_host(dy, x.size()), want, 1e-5, 1e-5, "rmsnorm");
        // in place, as the forward step uses it
        cuda::rmsnorm(dx.get(), dw.get(), rows, n, 1e-6f, dx.get(), nullptr);
        GPU_COMPARE(to_host(dx, x.size()), want, 1e-5, 1e-5, "rmsnorm in place");
    }

    void rope_tables_match_host()
    {
        // V2's rope: 64 dims, YaRN factor 40 from 4096 positions, mscale 0.707 both.
        ModelConfig c;
        c.qk_rope_head_dim = 64;
        c.qk_nope_head_dim = 128;
        c.rope_theta = 10000.0;
        c.has_yarn = true;
        c.yarn.factor = 40.0;
        c.yarn.original_max_position_embeddings = 4096;
        c.yarn.mscale = 0.707;
        c.yarn.mscale_all_dim = 0.707;
        const RopeFrequencies f = rope_frequencies(c);
        const std::vector<int> pos{0, 1, 2, 4095, 4096, 16383, 163839};
        const int half = 32;
        std::vector<float> want_cos(pos.size() * half), want_sin(pos.size() * half);
        for (std::size_t t = 0; t < pos.size(); ++t)
            rope_cos_sin(f, pos[t], want_cos.data() + t * half, want_sin.data() + t * half);
        auto dfreq = to_device(f.inv_freq);
        auto dpos = to_device(pos);
        DeviceBuffer<float> dcos(want_cos.size()), dsin(want_sin.size());
        cuda::rope_cos_sin(dfreq.get(), half, f.cos_sin_scale, dpos.get(), static_cast<int>(pos.size()), dcos.get(),
                           dsin.get(), nullptr);
        // Both take cos/sin of the same f32 angle in double: only the final rounding may differ.
        GPU_COMPARE(to_host(dcos, want_cos.size()), want_cos, 1e-6, 1e-6, "rope cos");
        GPU_COMPARE(to_host(dsin, want_sin.size()), want_sin, 1e-6, 1e-6, "rope sin");
    }

    void rope_rotation_matches_twin()
    {
        // 3 tokens of 16 heads [dn + dr] with the rope part at offset dn, as q is laid out.
        const int tokens = 3, H = 16, dn = 128, dr = 64, stride = dn + dr, half = dr / 2;
        std::mt19937 rng(5);
        auto q = random_vec(static_cast<std::size_t>(tokens) * H * stride, rng);
        const auto cos = random_vec(static_cast<std::size_t>(tokens) * half, rng);
        const auto sin = random_vec(static_cast<std::size_t>(tokens) * half, rng);
        auto want = q;
        for (int t = 0; t < tokens; ++t)
            ref::rope(want.data() + t * H * stride + dn, H, stride, dr, cos.data() + t * half, sin.data() + t * half);
        auto dq = to_device(q);
        auto dcos = to_device(cos);
        auto dsin = to_device(sin);
        cuda::rope_interleaved(dq.get() + dn, tokens, H * stride, H, stride, dr, dcos.get(), dsin.get(), nullptr);
        GPU_COMPARE(to_host(dq, q.size()), want, 1e-6, 1e-6, "rope rotation (nope part untouched)");
    }

    void silu_mul_matches_twin()
    {
        for (long long n : {1LL, 255LL, 257LL, 1000003LL}) {
            std::mt19937 rng(static_cast<unsigned>(n));
            auto gate = random_vec(n, rng, 4.0f);
            const auto up = random_vec(n, rng);
            auto want = gate;
            ref::silu_mul(want.data(), up.data(), static_cast<int>(n));
            auto dg = to_device(gate);
            auto du = to_device(up);
            cuda::silu_mul(dg.get(), du.get(), n, nullptr);
            GPU_COMPARE(to_host(dg, n), want, 1e-6, 1e-5, "silu_mul n=" + std::to_string(n));
        }
    }

    void vector_ops_match_host()
    {
        std::mt19937 rng(11);
        const int n = 1001;
        auto y = random_vec(n, rng);
        const auto x = random_vec(n, rng);
        auto want = y;
        for (int i = 0; i < n; ++i) want[i] += 0.25f * x[i];
        auto dy = to_device(y);
        auto dx = to_device(x);
        cuda::axpy(dy.get(), 0.25f, dx.get(), n, nullptr);
        GPU_COMPARE(to_host(dy, n), want, 0.0, 1e-7, "axpy");

        DeviceBuffer<std::uint16_t> db(n);
        cuda::f32_to_bf16(dx.get(), db.get(), n, nullptr);
        const auto b = to_host(db, n);
        for (int i = 0; i < n; ++i)
            if (b[i] != f32_to_bf16(x[i])) QFAIL(("f32_to_bf16: element " + std::to_string(i) + " rounds differently").c_str());

        // embedding rows of a bf16 table, ids out of order and repeated
        const int rows = 37, cols = 300;
        const HostWeight table = store(random_vec(static_cast<std::size_t>(rows) * cols, rng), rows, cols, cuda::ElemType::bf16);
        const std::vector<int> ids{5, 0, 36, 5};
        std::vector<float> want_e(ids.size() * cols);
        for (std::size_t t = 0; t < ids.size(); ++t)
            for (int c = 0; c < cols; ++c) want_e[t * cols + c] = ref::weight_at(table.view, ids[t], c);
        DeviceBuffer<std::byte> dt(table.bytes.size());
        dt.upload(table.bytes.data(), table.bytes.size());
        auto dids = to_device(ids);
        DeviceBuffer<float> de(want_e.size());
        cuda::embedding_rows(dt.get(), cuda::ElemType::bf16, cols, dids.get(), static_cast<int>(ids.size()), de.get(), nullptr);
        GPU_COMPARE(to_host(de, want_e.size()), want_e, 0.0, 0.0, "embedding rows");
    }

    void moe_gate_matches_twin_data()
    {
        QTest::addColumn<int>("tokens");
        QTest::addColumn<int>("experts");
        QTest::addColumn<int>("top_k");
        QTest::addColumn<bool>("grouped");
        QTest::addColumn<int>("n_group");
        QTest::addColumn<int>("topk_group");
        QTest::addColumn<bool>("norm");
        QTest::addColumn<float>("levels");  // logits on a grid of this many steps: exact ties
        QTest::newRow("1 token, V2-Lite greedy") << 1 << 64 << 6 << false << 1 << 1 << false << 0.0f;
        QTest::newRow("33 tokens, V2-Lite greedy, ties") << 33 << 64 << 6 << false << 1 << 1 << false << 8.0f;
        QTest::newRow("17 tokens, V2 group-limited") << 17 << 160 << 6 << true << 8 << 3 << false << 0.0f;
        QTest::newRow("17 tokens, V2 group-limited, ties") << 17 << 160 << 6 << true << 8 << 3 << false << 4.0f;
        QTest::newRow("5 tokens, normalised top-k") << 5 << 64 << 6 << false << 1 << 1 << true << 0.0f;
        QTest::newRow("all equal logits") << 2 << 64 << 6 << false << 1 << 1 << false << 0.001f;
        QTest::newRow("golden v2 shape") << 9 << 16 << 3 << true << 4 << 2 << false << 2.0f;
    }
    void moe_gate_matches_twin()
    {
        QFETCH(int, tokens);
        QFETCH(int, experts);
        QFETCH(int, top_k);
        QFETCH(bool, grouped);
        QFETCH(int, n_group);
        QFETCH(int, topk_group);
        QFETCH(bool, norm);
        QFETCH(float, levels);
        std::mt19937 rng(tokens * 31 + experts);
        auto logits = random_vec(static_cast<std::size_t>(tokens) * experts, rng, 2.0f);
        // Ties must come out of both sides identically, so they are exact here;
        // distinct values are at least 1/levels apart, far beyond the two
        // softmaxes' ulp-level differences that would otherwise flip an order.
        if (levels > 0.0f)
            for (auto& v : logits) v = std::round(v * levels) / levels;
        if (levels > 0.0f && levels < 0.01f) std::fill(logits.begin(), logits.end(), 0.5f);

        // One struct for both: the GPU gate's parameters are the CPU's RouteParams.
        const RouteParams rp{experts, top_k, grouped ? 1 : 0, n_group, topk_group, norm ? 1 : 0, grouped ? 16.0f : 1.0f};
        const cuda::GateParams& gp = rp;

        std::vector<float> want_p = logits;
        std::vector<int> want_ids(static_cast<std::size_t>(tokens) * top_k);
        std::vector<float> want_w(want_ids.size());
        for (int t = 0; t < tokens; ++t) {
            ref::softmax(want_p.data() + t * experts, experts);
            ref::moe_route(want_p.data() + t * experts, rp, want_ids.data() + t * top_k, want_w.data() + t * top_k);
        }
        auto dl = to_device(logits);
        DeviceBuffer<float> dp(logits.size()), dw(want_w.size());
        DeviceBuffer<int> di(want_ids.size());
        cuda::moe_gate_topk(dl.get(), tokens, gp, dp.get(), di.get(), dw.get(), nullptr);
        GPU_COMPARE(to_host(dp, logits.size()), want_p, 1e-7, 1e-5, "gate softmax");
        const auto ids = to_host(di, want_ids.size());
        for (std::size_t i = 0; i < ids.size(); ++i)
            if (ids[i] != want_ids[i])
                QFAIL(("token " + std::to_string(i / top_k) + " choice " + std::to_string(i % top_k) + ": expert " +
                       std::to_string(ids[i]) + ", the CPU chose " + std::to_string(want_ids[i]))
                          .c_str());
        GPU_COMPARE(to_host(dw, want_w.size()), want_w, 1e-7, 1e-5, "routing weights");
    }

    void moe_gate_rejects_bad_groups()
    {
        cuda::GateParams gp{};
        gp.n_experts = 10;
        gp.top_k = 2;
        gp.group_limited = 1;
        gp.n_group = 3;  // does not divide 10
        gp.topk_group = 1;
        try {
            cuda::moe_gate_topk(nullptr, 1, gp, nullptr, nullptr, nullptr, nullptr);
            QFAIL("expected a CudaError");
        } catch (const cuda::CudaError& e) {
            QVERIFY2(std::string(e.what()).find("moe_gate_topk_kernel") != std::string::npos, e.what());
        }
    }

    void permute_and_combine_match_loops_data()
    {
        QTest::addColumn<int>("tokens");
        QTest::addColumn<int>("experts");
        QTest::addColumn<int>("top_k");
        QTest::newRow("1 token") << 1 << 64 << 6;
        QTest::newRow("57 tokens, V2-Lite") << 57 << 64 << 6;
        QTest::newRow("512 tokens, V2") << 512 << 160 << 6;
        QTest::newRow("top-1") << 9 << 4 << 1;
    }
    void permute_and_combine_match_loops()
    {
        QFETCH(int, tokens);
        QFETCH(int, experts);
        QFETCH(int, top_k);
        const int cols = 300;
        std::mt19937 rng(tokens + experts);
        std::vector<int> ids(static_cast<std::size_t>(tokens) * top_k);
        std::vector<int> all(experts);
        std::iota(all.begin(), all.end(), 0);
        for (int t = 0; t < tokens; ++t) {
            std::shuffle(all.begin(), all.end(), rng);  // distinct experts per token, as routing gives
            std::copy(all.begin(), all.begin() + top_k, ids.begin() + t * top_k);
        }
        const auto weights = random_vec(ids.size(), rng);
        const auto x = random_vec(static_cast<std::size_t>(tokens) * cols, rng);

        // Expected plan: experts in order, each expert's entries in (t, j) order.
        std::vector<int> want_off(experts + 1, 0), want_slot(ids.size()), want_tok(ids.size());
        int next = 0;
        for (int e = 0; e < experts; ++e) {
            want_off[e] = next;
            for (std::size_t i = 0; i < ids.size(); ++i)
                if (ids[i] == e) {
                    want_slot[i] = next;
                    want_tok[next++] = static_cast<int>(i) / top_k;
                }
        }
        want_off[experts] = next;

        auto did = to_device(ids);
        DeviceBuffer<int> doff(experts + 1), dslot(ids.size()), dtok(ids.size());
        cuda::moe_permute_plan(did.get(), tokens, top_k, experts, doff.get(), dslot.get(), dtok.get(), nullptr);
        QCOMPARE(to_host(doff, experts + 1), want_off);
        QCOMPARE(to_host(dslot, ids.size()), want_slot);
        QCOMPARE(to_host(dtok, ids.size()), want_tok);

        // gather, a stand-in "expert" (y = 2x + slot), combine
        const int n_slots = static_cast<int>(ids.size());
        auto dx = to_device(x);
        DeviceBuffer<float> dxp(static_cast<std::size_t>(n_slots) * cols);
        cuda::moe_gather_rows(dx.get(), dtok.get(), n_slots, cols, dxp.get(), nullptr);
        const auto xp = to_host(dxp, dxp.size());
        std::vector<float> yp(xp.size());
        for (int s = 0; s < n_slots; ++s)
            for (int c = 0; c < cols; ++c) {
                QCOMPARE(xp[static_cast<std::size_t>(s) * cols + c], x[static_cast<std::size_t>(want_tok[s]) * cols + c]);
                yp[static_cast<std::size_t>(s) * cols + c] = 2.0f * xp[static_cast<std::size_t>(s) * cols + c] + s;
            }
        auto dyp = to_device(yp);
        auto dwt = to_device(weights);
        const auto base = random_vec(static_cast<std::size_t>(tokens) * cols, rng);
        auto dout = to_device(base);
        cuda::moe_combine(dyp.get(), dslot.get(), dwt.get(), tokens, top_k, cols, dout.get(), true, nullptr);
        std::vector<float> want = base;
        for (int t = 0; t < tokens; ++t)
            for (int j = 0; j < top_k; ++j)
                for (int c = 0; c < cols; ++c)
                    want[static_cast<std::size_t>(t) * cols + c] +=
                        weights[t * top_k + j] * yp[static_cast<std::size_t>(want_slot[t * top_k + j]) * cols + c];
        GPU_COMPARE(to_host(dout, want.size()), want, 1e-5, 1e-6, "weighted combine");
    }

    void matmul_matches_twin_data()
    {
        QTest::addColumn<int>("type");
        QTest::addColumn<int>("rows");
        QTest::addColumn<int>("cols");
        QTest::addColumn<int>("n");
        for (int t : {0, 1, 2}) {
            const std::string tn = cuda::elem_type_name(static_cast<cuda::ElemType>(t));
            QTest::newRow((tn + " 1x8, 1 token").c_str()) << t << 1 << 8 << 1;
            QTest::newRow((tn + " 7x40, 3 tokens").c_str()) << t << 7 << 40 << 3;
            QTest::newRow((tn + " 33x2050 (no 16-byte rows), 9 tokens").c_str()) << t << 33 << 2050 << 9;
            QTest::newRow((tn + " 1408x2048, 1 token").c_str()) << t << 1408 << 2048 << 1;
            QTest::newRow((tn + " 257x512, 17 tokens").c_str()) << t << 257 << 512 << 17;
        }
    }
    void matmul_matches_twin()
    {
        QFETCH(int, type);
        QFETCH(int, rows);
        QFETCH(int, cols);
        QFETCH(int, n);
        std::mt19937 rng(rows * 13 + cols + n);
        const HostWeight w = store(random_vec(static_cast<std::size_t>(rows) * cols, rng), rows, cols,
                                   static_cast<cuda::ElemType>(type));
        const auto x = random_vec(static_cast<std::size_t>(n) * cols, rng);
        std::vector<float> want(static_cast<std::size_t>(n) * rows), mag(want.size());
        for (int t = 0; t < n; ++t) {
            ref::matvec(w.view, x.data() + t * cols, want.data() + t * rows);
            const auto m = abs_dot(w.view, x.data() + t * cols);
            std::copy(m.begin(), m.end(), mag.begin() + t * rows);
        }
        DeviceBuffer<std::byte> dw(w.bytes.size());
        dw.upload(w.bytes.data(), w.bytes.size());
        auto dx = to_device(x);
        DeviceBuffer<float> dy(want.size());
        cuda::matmul({dw.get(), w.type, rows, cols}, dx.get(), n, dy.get(), nullptr);
        compare_dots(to_host(dy, want.size()), want, mag, "matmul");
    }

    void absorbed_head_products_match_twin()
    {
        // V2-Lite's kv_b_proj [H*(dn+dv), kv_lora]; 3 tokens of q [H, dn+dr] and out_lat [H, kv_lora]
        const int H = 16, dn = 128, dv = 128, dr = 64, dc = 512, T = 3;
        std::mt19937 rng(21);
        const HostWeight kvb = store(random_vec(static_cast<std::size_t>(H) * (dn + dv) * dc, rng, 0.05f), H * (dn + dv),
                                     dc, cuda::ElemType::bf16);
        const auto q = random_vec(static_cast<std::size_t>(T) * H * (dn + dr), rng);
        const auto lat = random_vec(static_cast<std::size_t>(T) * H * dc, rng);
        std::vector<float> want_q(static_cast<std::size_t>(T) * H * dc), want_o(static_cast<std::size_t>(T) * H * dv);
        for (int t = 0; t < T; ++t)
            for (int h = 0; h < H; ++h) {
                ref::matvec_transposed(kvb.view.row_slice(h * (dn + dv), dn), q.data() + (t * H + h) * (dn + dr),
                                       want_q.data() + (t * H + h) * dc);
                ref::matvec(kvb.view.row_slice(h * (dn + dv) + dn, dv), lat.data() + (t * H + h) * dc,
                            want_o.data() + (t * H + h) * dv);
            }
        DeviceBuffer<std::byte> dw(kvb.bytes.size());
        dw.upload(kvb.bytes.data(), kvb.bytes.size());
        const cuda::WeightRef wr{dw.get(), cuda::ElemType::bf16, H * (dn + dv), dc};
        auto dq = to_device(q);
        auto dlat = to_device(lat);
        DeviceBuffer<float> dql(want_q.size()), dout(want_o.size());
        cuda::matvec_transposed_heads(wr, H, dn, dn + dv, dq.get(), dn + dr, T, H * (dn + dr), dql.get(), nullptr);
        cuda::matvec_heads(wr, H, dv, dn + dv, dn, dlat.get(), dc, T, H * dc, dout.get(), nullptr);
        GPU_COMPARE(to_host(dql, want_q.size()), want_q, 1e-4, 1e-4, "absorbed query W_UK^T q_nope");
        GPU_COMPARE(to_host(dout, want_o.size()), want_o, 1e-4, 1e-4, "absorbed output W_UV out_lat");
    }

    void grouped_matmul_matches_per_expert_products()
    {
        // 8 experts [rows, cols]; token counts 0, 1, 9 (over one 8-token tile), ...
        const int E = 8, rows = 72, cols = 136;
        const std::vector<int> counts{0, 1, 9, 0, 3, 17, 2, 0};
        std::vector<int> offsets{0};
        for (int c : counts) offsets.push_back(offsets.back() + c);
        const int total = offsets.back();
        std::mt19937 rng(77);
        const HostWeight w = store(random_vec(static_cast<std::size_t>(E) * rows * cols, rng), E * rows, cols,
                                   cuda::ElemType::bf16);
        const auto x = random_vec(static_cast<std::size_t>(total) * cols, rng);
        std::vector<float> want(static_cast<std::size_t>(total) * rows), mag(want.size());
        for (int e = 0; e < E; ++e)
            for (int t = offsets[e]; t < offsets[e + 1]; ++t) {
                const WeightView we = w.view.row_slice(e * rows, rows);
                ref::matvec(we, x.data() + static_cast<std::size_t>(t) * cols, want.data() + static_cast<std::size_t>(t) * rows);
                const auto m = abs_dot(we, x.data() + static_cast<std::size_t>(t) * cols);
                std::copy(m.begin(), m.end(), mag.begin() + static_cast<std::size_t>(t) * rows);
            }
        DeviceBuffer<std::byte> dw(w.bytes.size());
        dw.upload(w.bytes.data(), w.bytes.size());
        auto dx = to_device(x);
        auto doff = to_device(offsets);
        DeviceBuffer<float> dy(want.size());
        cuda::matmul_grouped({dw.get(), cuda::ElemType::bf16, rows, cols}, E, doff.get(), 17, dx.get(), dy.get(), nullptr);
        compare_dots(to_host(dy, want.size()), want, mag, "grouped expert products");
    }

    void rmsnorm_rows_strided_in_place()
    {
        // the c_kv part of [c_kv ; k_pe] rows, normalised in place; k_pe untouched
        const int rows = 5, dc = 512, dr = 64, stride = dc + dr;
        std::mt19937 rng(3);
        const auto x = random_vec(static_cast<std::size_t>(rows) * stride, rng);
        const auto w = random_vec(dc, rng);
        auto want = x;
        for (int r = 0; r < rows; ++r) ref::rmsnorm(x.data() + r * stride, w.data(), dc, 1e-6f, want.data() + r * stride);
        auto dx = to_device(x);
        auto dw = to_device(w);
        cuda::rmsnorm_rows(dx.get(), stride, dw.get(), rows, dc, 1e-6f, dx.get(), stride, nullptr);
        GPU_COMPARE(to_host(dx, x.size()), want, 1e-5, 1e-5, "strided rmsnorm");
    }

    void cublas_bf16_gemm_matches_twin()
    {
        std::string why;
        auto blas = cuda::Cublas::open(&why);
        if (!blas) QSKIP(("cuBLAS not loadable here: " + why).c_str());
        for (int n : {1, 5, 64}) {
            const int rows = 1408, cols = 2048;
            std::mt19937 rng(n);
            const HostWeight w = store(random_vec(static_cast<std::size_t>(rows) * cols, rng), rows, cols, cuda::ElemType::bf16);
            auto x = random_vec(static_cast<std::size_t>(n) * cols, rng);
            for (auto& v : x) v = bf16_to_f32(f32_to_bf16(v));  // the fast mode rounds activations to bf16 first
            std::vector<float> want(static_cast<std::size_t>(n) * rows), mag(want.size());
            for (int t = 0; t < n; ++t) {
                ref::matvec(w.view, x.data() + t * cols, want.data() + t * rows);
                const auto m = abs_dot(w.view, x.data() + t * cols);
                std::copy(m.begin(), m.end(), mag.begin() + t * rows);
            }
            DeviceBuffer<std::byte> dw(w.bytes.size());
            dw.upload(w.bytes.data(), w.bytes.size());
            auto dx = to_device(x);
            DeviceBuffer<std::uint16_t> dxb(x.size());
            cuda::f32_to_bf16(dx.get(), dxb.get(), static_cast<long long>(x.size()), nullptr);
            DeviceBuffer<float> dy(want.size());
            blas->gemm_bf16(reinterpret_cast<const std::uint16_t*>(dw.get()), rows, cols, dxb.get(), n, dy.get(), nullptr);
            compare_dots(to_host(dy, want.size()), want, mag, "cuBLAS bf16 GEMM n=" + std::to_string(n));
        }
    }

    void bad_launch_names_the_kernel()
    {
        // 70000 tokens exceed gridDim.y (65535): CUDA refuses the configuration.
        DeviceBuffer<float> table(4), out(4);
        DeviceBuffer<int> ids(1);
        try {
            cuda::embedding_rows(table.get(), cuda::ElemType::f32, 1, ids.get(), 70000, out.get(), nullptr);
            QFAIL("expected a CudaError");
        } catch (const cuda::CudaError& e) {
            QVERIFY2(std::string(e.what()).find("embedding_rows_kernel") != std::string::npos, e.what());
        }
    }
};

QTEST_GUILESS_MAIN(TestCudaKernels)
#include "test_cuda_kernels.moc"
