// The paged MLA decode kernel (and the cache store that fills its pages) against
// ref::attention_mla_absorbed: contexts of 1 row, one tile +-1, 4095 and 16K;
// several sequences with different lengths in one launch over a shuffled page
// pool; f32, bf16 and fp8 pages; V2-Lite (16 heads), V2 (128 heads) and the
// goldens' tiny shapes. Skips without a GPU.
#include <QTest>

#include <cuda_fp8.h>

#include <algorithm>
#include <cstring>
#include <numeric>

#include "cpu/ref/ref_kernels.h"
#include "cuda/kernels/attention_mla_decode.h"
#include "cuda/kernels/latent_pages.h"
#include "gpu_test_util.h"
#include "moelens/safetensors.h"

using namespace moelens;
using cuda::DeviceBuffer;
using gpu_test::random_vec;
using gpu_test::to_device;
using gpu_test::to_host;

namespace {

struct Case {
    int heads, kv_lora, dr;
    std::vector<int> ctx;  // per sequence
    cuda::ElemType type;
};

// The values the device holds after storing `rows` as `type`, read back and
// widened: the twin runs on exactly what the kernel reads.
std::vector<float> stored_values(const DeviceBuffer<std::byte>& data, const DeviceBuffer<float>& scales,
                                 cuda::ElemType type, std::size_t n_rows, int width)
{
    std::vector<float> out(n_rows * width);
    cuda::check_cuda(cudaDeviceSynchronize(), "test: cudaDeviceSynchronize");
    std::vector<std::byte> raw(n_rows * width * cuda::elem_size(type));
    data.download(raw.data(), raw.size());
    std::vector<float> sc;
    const int nblk = cuda::fp8_scale_blocks(width);
    if (type == cuda::ElemType::fp8_e4m3) sc = to_host(scales, n_rows * nblk);
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (type == cuda::ElemType::f32) {
            std::memcpy(&out[i], raw.data() + 4 * i, 4);
        } else if (type == cuda::ElemType::bf16) {
            std::uint16_t h;
            std::memcpy(&h, raw.data() + 2 * i, 2);
            out[i] = bf16_to_f32(h);
        } else {
            __nv_fp8_e4m3 v;
            std::memcpy(&v, raw.data() + i, 1);
            out[i] = float(v) * sc[(i / width) * nblk + (i % width) / 64];
        }
    }
    return out;
}

}  // namespace

class TestCudaAttention : public QObject {
    Q_OBJECT

private slots:
    void initTestCase()
    {
        const std::string why = gpu_test::why_no_gpu();
        if (!why.empty()) QSKIP(why.c_str());
    }

    void mla_decode_matches_twin_data()
    {
        QTest::addColumn<int>("heads");
        QTest::addColumn<int>("kv_lora");
        QTest::addColumn<int>("dr");
        QTest::addColumn<QList<int>>("ctx");
        QTest::addColumn<int>("type");
        const int f32 = 0, bf16 = 2, fp8 = 3;
        QTest::newRow("V2-Lite f32, context 1") << 16 << 512 << 64 << QList<int>{1} << f32;
        QTest::newRow("V2-Lite f32, tile edges 31/32/33") << 16 << 512 << 64 << QList<int>{31, 32, 33} << f32;
        QTest::newRow("V2-Lite f32, context 4095") << 16 << 512 << 64 << QList<int>{4095} << f32;
        QTest::newRow("V2-Lite f32, context 16K") << 16 << 512 << 64 << QList<int>{16384} << f32;
        QTest::newRow("V2-Lite bf16, batch 1/700/4095") << 16 << 512 << 64 << QList<int>{1, 700, 4095} << bf16;
        QTest::newRow("V2-Lite fp8, batch 5/2049") << 16 << 512 << 64 << QList<int>{5, 2049} << fp8;
        QTest::newRow("V2 128 heads bf16, context 100") << 128 << 512 << 64 << QList<int>{100} << bf16;
        QTest::newRow("golden shape f32 (unaligned for fp8)") << 4 << 32 << 8 << QList<int>{1, 40} << f32;
        QTest::newRow("golden shape fp8 (scalar loads)") << 4 << 32 << 8 << QList<int>{3, 70} << fp8;
        QTest::newRow("empty sequence beside a full one") << 16 << 512 << 64 << QList<int>{0, 65} << bf16;
    }
    void mla_decode_matches_twin()
    {
        QFETCH(int, heads);
        QFETCH(int, kv_lora);
        QFETCH(int, dr);
        QFETCH(QList<int>, ctx);
        QFETCH(int, type);
        const auto etype = static_cast<cuda::ElemType>(type);
        const int width = kv_lora + dr, page_rows = 64;
        const int n_seqs = static_cast<int>(ctx.size());
        const int max_ctx = std::max(1, *std::max_element(ctx.begin(), ctx.end()));
        const int max_pages = (max_ctx + page_rows - 1) / page_rows;
        std::mt19937 rng(heads * 1009 + max_ctx + type);

        // A shuffled pool: sequence b's page i is pool page table[b][i].
        const int n_pages = n_seqs * max_pages;
        std::vector<int> pool(n_pages);
        std::iota(pool.begin(), pool.end(), 0);
        std::shuffle(pool.begin(), pool.end(), rng);
        std::vector<int> table(pool.begin(), pool.end());

        // Rows as the forward step writes them (f32), stored through the kernel.
        const std::size_t pool_rows = static_cast<std::size_t>(n_pages) * page_rows;
        const auto rows = random_vec(pool_rows * width, rng);
        std::vector<int> dest(pool_rows);
        std::iota(dest.begin(), dest.end(), 0);
        DeviceBuffer<std::byte> ddata(pool_rows * width * cuda::elem_size(etype));
        DeviceBuffer<float> dscales(etype == cuda::ElemType::fp8_e4m3 ? pool_rows * cuda::fp8_scale_blocks(width) : 0);
        cuda::LatentPages pages{ddata.get(), dscales.get(), etype, page_rows, width};
        auto drows = to_device(rows);
        auto ddest = to_device(dest);
        cuda::latent_rows_store(drows.get(), static_cast<int>(pool_rows), ddest.get(), pages, nullptr);
        const auto held = stored_values(ddata, dscales, etype, pool_rows, width);
        // the stored values are the rows rounded: bf16 to 2^-8 relative, fp8 to 2^-4 of its block's max
        const double round_tol = etype == cuda::ElemType::f32 ? 0.0 : etype == cuda::ElemType::bf16 ? 1.0 / 256 : 1.0 / 16;
        GPU_COMPARE(held, rows, round_tol * 6.0, round_tol, "latent rows as stored");

        // Queries scaled so the softmax is neither flat nor one-hot.
        const auto q_lat = random_vec(static_cast<std::size_t>(n_seqs) * heads * kv_lora, rng, 0.5f);
        const auto q_pe = random_vec(static_cast<std::size_t>(n_seqs) * heads * dr, rng, 0.5f);
        MlaDims d{heads, kv_lora, 128, dr, 128, 1.0f / std::sqrt(192.0f)};
        std::vector<float> want(static_cast<std::size_t>(n_seqs) * heads * kv_lora, 0.0f);
        for (int b = 0; b < n_seqs; ++b) {
            if (ctx[b] == 0) continue;
            // gather sequence b's rows contiguously for the twin
            std::vector<float> seq(static_cast<std::size_t>(ctx[b]) * width);
            for (int p = 0; p < ctx[b]; ++p) {
                const std::size_t r = static_cast<std::size_t>(table[b * max_pages + p / page_rows]) * page_rows + p % page_rows;
                std::copy_n(held.begin() + r * width, width, seq.begin() + static_cast<std::size_t>(p) * width);
            }
            const float* base = seq.data();
            ref::attention_mla_absorbed(q_lat.data() + static_cast<std::size_t>(b) * heads * kv_lora,
                                        q_pe.data() + static_cast<std::size_t>(b) * heads * dr,
                                        LatentCacheView::contiguous(&base, width, ctx[b]), d,
                                        want.data() + static_cast<std::size_t>(b) * heads * kv_lora);
        }

        cuda::MlaDecodeShape s{n_seqs, heads, kv_lora, dr, d.softmax_scale, max_ctx, max_pages};
        const int sms = gpu_test::sm_count();
        DeviceBuffer<float> work(cuda::mla_decode_workspace_floats(s, sms));
        auto dq = to_device(q_lat);
        auto dqpe = to_device(q_pe);
        auto dtable = to_device(table);
        auto dctx = to_device(std::vector<int>(ctx.begin(), ctx.end()));
        DeviceBuffer<float> dout(want.size());
        cuda::attention_mla_decode(dq.get(), dqpe.get(), pages, dtable.get(), dctx.get(), s, dout.get(), work.get(),
                                   work.size(), sms, nullptr);
        // Outputs are convex combinations of values ~N(0,1); f32 online softmax and
        // split merging against the double twin stay within a few 1e-6.
        GPU_COMPARE(to_host(dout, want.size()), want, 2e-5, 1e-4, "MLA decode out_lat");
    }

    void causal_queries_share_one_page_table()
    {
        // A prompt's T queries as the forward step passes them: one page table,
        // ctx_len = position + 1, q_pe read in place from q [T, H, dn + dr].
        const int H = 16, dc = 512, dr = 64, dn = 128, width = dc + dr, T = 70, page_rows = 64;
        const int pages_n = (T + page_rows - 1) / page_rows;
        std::mt19937 rng(99);
        const auto rows = random_vec(static_cast<std::size_t>(pages_n) * page_rows * width, rng);
        const auto q_lat = random_vec(static_cast<std::size_t>(T) * H * dc, rng, 0.5f);
        const auto q = random_vec(static_cast<std::size_t>(T) * H * (dn + dr), rng, 0.5f);
        MlaDims d{H, dc, dn, dr, 128, 0.07f};
        std::vector<float> want(static_cast<std::size_t>(T) * H * dc);
        for (int t = 0; t < T; ++t) {
            std::vector<float> q_pe(static_cast<std::size_t>(H) * dr);
            for (int h = 0; h < H; ++h)
                std::copy_n(q.begin() + (static_cast<std::size_t>(t) * H + h) * (dn + dr) + dn, dr, q_pe.begin() + h * dr);
            const float* base = rows.data();
            ref::attention_mla_absorbed(q_lat.data() + static_cast<std::size_t>(t) * H * dc, q_pe.data(),
                                        LatentCacheView::contiguous(&base, width, t + 1), d,
                                        want.data() + static_cast<std::size_t>(t) * H * dc);
        }
        std::vector<int> table(pages_n), ctx(T);
        std::iota(table.begin(), table.end(), 0);
        std::iota(ctx.begin(), ctx.end(), 1);
        auto drows = to_device(rows);
        cuda::LatentPages pages{drows.get(), nullptr, cuda::ElemType::f32, page_rows, width};
        cuda::MlaDecodeShape s{T, H, dc, dr, d.softmax_scale, T, pages_n, dn + dr, H * (dn + dr), 0};
        const int sms = gpu_test::sm_count();
        DeviceBuffer<float> work(cuda::mla_decode_workspace_floats(s, sms));
        auto dq = to_device(q_lat);
        auto dqq = to_device(q);
        auto dtable = to_device(table);
        auto dctx = to_device(ctx);
        DeviceBuffer<float> dout(want.size());
        cuda::attention_mla_decode(dq.get(), dqq.get() + dn, pages, dtable.get(), dctx.get(), s, dout.get(), work.get(),
                                   work.size(), sms, nullptr);
        GPU_COMPARE(to_host(dout, want.size()), want, 2e-5, 1e-4, "causal prompt queries");
    }

    void mla_decode_rejects_mismatched_width()
    {
        cuda::LatentPages pages{nullptr, nullptr, cuda::ElemType::bf16, 64, 577};
        cuda::MlaDecodeShape s{1, 16, 512, 64, 0.1f, 1, 1};
        try {
            cuda::attention_mla_decode(nullptr, nullptr, pages, nullptr, nullptr, s, nullptr, nullptr, 0, 1, nullptr);
            QFAIL("expected a CudaError");
        } catch (const cuda::CudaError& e) {
            QVERIFY2(std::string(e.what()).find("attention_mla_decode_kernel") != std::string::npos, e.what());
        }
    }
};

QTEST_GUILESS_MAIN(TestCudaAttention)
#include "test_cuda_attention.moc"
