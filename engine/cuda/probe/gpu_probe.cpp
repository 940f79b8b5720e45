// moelens-gpu-probe [--quick]: measures, on device 0,
//   copy      device-to-device cudaMemcpy of 2 GiB, (read + written bytes) / s
//   mla       attention_mla_decode over V2-Lite shapes (16 heads, 512 + 64 latent),
//             batch x context, for each cache type: latent bytes read / s, and
//             that as a fraction of the copy rate's read half
//   weights   the decode products: one bf16 matrix of V2-Lite (q_proj, experts,
//             lm_head) times one token, bytes / s
// Every figure is the median of timed repetitions after a warm-up, by CUDA events.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "cuda/kernels/attention_mla_decode.h"
#include "cuda/kernels/cuda_error.h"
#include "cuda/kernels/device_buffer.h"
#include "cuda/kernels/latent_pages.h"
#include "cuda/kernels/matmul.h"

using namespace moelens::cuda;

namespace {

// Median milliseconds of `reps` runs of f, after two warm-up runs.
double time_ms(int reps, const std::function<void()>& f)
{
    cudaEvent_t a, b;
    check_cuda(cudaEventCreate(&a), "cudaEventCreate");
    check_cuda(cudaEventCreate(&b), "cudaEventCreate");
    for (int i = 0; i < 2; ++i) f();
    std::vector<double> ms;
    for (int i = 0; i < reps; ++i) {
        check_cuda(cudaEventRecord(a), "cudaEventRecord");
        f();
        check_cuda(cudaEventRecord(b), "cudaEventRecord");
        check_cuda(cudaEventSynchronize(b), "cudaEventSynchronize");
        float t = 0.0f;
        check_cuda(cudaEventElapsedTime(&t, a, b), "cudaEventElapsedTime");
        ms.push_back(t);
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

// Fills a buffer with small pseudo-random bf16/f32/fp8 bytes that decode to
// finite values (exponent bits kept low), so the kernels see ordinary numbers.
void fill_finite(void* p, std::size_t bytes)
{
    std::vector<unsigned char> host(std::min<std::size_t>(bytes, 64u << 20));
    unsigned x = 12345;
    for (auto& c : host) {
        x = x * 1103515245u + 12345u;
        c = static_cast<unsigned char>((x >> 16) & 0x3f);  // sign 0, small exponent in every byte position
    }
    for (std::size_t off = 0; off < bytes; off += host.size())
        check_cuda(cudaMemcpy(static_cast<char*>(p) + off, host.data(), std::min(host.size(), bytes - off),
                              cudaMemcpyHostToDevice),
                   "fill");
}

}  // namespace

int main(int argc, char** argv)
{
    const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
    try {
        int n = 0;
        check_cuda(cudaGetDeviceCount(&n), "cudaGetDeviceCount");
        cudaDeviceProp prop{};
        check_cuda(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
        int sms = 0;
        check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), "cudaDeviceGetAttribute");
        std::printf("device      %s, sm_%d%d, %d SMs, %.1f GiB\n", prop.name, prop.major, prop.minor, sms,
                    prop.totalGlobalMem / double(1u << 30));
        const int reps = quick ? 5 : 20;

        // copy bandwidth
        const std::size_t copy_bytes = std::size_t(2) << 30;
        DeviceBuffer<char> src(copy_bytes, "copy source"), dst(copy_bytes, "copy destination");
        check_cuda(cudaMemset(src.get(), 1, copy_bytes), "cudaMemset");
        const double copy_ms = time_ms(reps, [&] {
            check_cuda(cudaMemcpyAsync(dst.get(), src.get(), copy_bytes, cudaMemcpyDeviceToDevice), "cudaMemcpyAsync");
        });
        const double copy_gbs = 2.0 * copy_bytes / (copy_ms * 1e6);  // read + write
        std::printf("copy        %.0f GB/s (read + write of %.1f GiB in %.3f ms); read half %.0f GB/s\n", copy_gbs,
                    copy_bytes / double(1u << 30), copy_ms, copy_gbs / 2);

        // MLA decode
        struct Shape {
            int batch, ctx;
        };
        const std::vector<Shape> shapes = quick ? std::vector<Shape>{{64, 4096}, {1, 16384}}
                                                : std::vector<Shape>{{1, 1024}, {1, 16384}, {8, 1024}, {8, 16384},
                                                                     {64, 1024}, {64, 4096}, {64, 16384}};
        const int H = 16, dc = 512, dr = 64, width = dc + dr;
        for (ElemType type : {ElemType::bf16, ElemType::fp8_e4m3, ElemType::f32}) {
            for (const Shape& sh : shapes) {
                const int pages = (sh.ctx + 63) / 64;
                const std::size_t rows = static_cast<std::size_t>(sh.batch) * pages * 64;
                DeviceBuffer<std::byte> data(rows * width * elem_size(type), "latent rows");
                fill_finite(data.get(), data.bytes());
                DeviceBuffer<float> scales(type == ElemType::fp8_e4m3 ? rows * fp8_scale_blocks(width) : 0, "scales");
                if (scales.size()) {
                    std::vector<float> ones(scales.size(), 0.01f);
                    scales.upload(ones.data(), ones.size());
                }
                std::vector<int> table(static_cast<std::size_t>(sh.batch) * pages), ctx(sh.batch, sh.ctx);
                for (std::size_t i = 0; i < table.size(); ++i) table[i] = static_cast<int>(i);
                DeviceBuffer<int> dtable(table.size()), dctx(ctx.size());
                dtable.upload(table.data(), table.size());
                dctx.upload(ctx.data(), ctx.size());
                DeviceBuffer<float> q(static_cast<std::size_t>(sh.batch) * H * dc), qpe(static_cast<std::size_t>(sh.batch) * H * dr),
                    out(static_cast<std::size_t>(sh.batch) * H * dc);
                check_cuda(cudaMemset(q.get(), 0, q.bytes()), "cudaMemset");
                check_cuda(cudaMemset(qpe.get(), 0, qpe.bytes()), "cudaMemset");
                const LatentPages lp{data.get(), scales.get(), type, 64, width};
                const MlaDecodeShape s{sh.batch, H, dc, dr, 0.07f, sh.ctx, pages};
                DeviceBuffer<float> work(mla_decode_workspace_floats(s, sms));
                const double ms = time_ms(reps, [&] {
                    attention_mla_decode(q.get(), qpe.get(), lp, dtable.get(), dctx.get(), s, out.get(), work.get(),
                                         work.size(), sms, nullptr);
                });
                const double bytes = static_cast<double>(sh.batch) * sh.ctx * latent_row_bytes(type, width);
                const double gbs = bytes / (ms * 1e6);
                std::printf("mla %-8s batch %3d x ctx %5d: %8.3f ms, %6.0f GB/s read = %5.1f%% of the copy read rate\n",
                            elem_type_name(type), sh.batch, sh.ctx, ms, gbs, 100.0 * gbs / (copy_gbs / 2));
            }
        }

        // decode products (one token): V2-Lite's matrices in bf16
        struct Mat {
            const char* name;
            int rows, cols;
        };
        for (const Mat& m : {Mat{"q_proj 3072x2048", 3072, 2048}, Mat{"expert gate 1408x2048", 1408, 2048},
                             Mat{"expert down 2048x1408", 2048, 1408}, Mat{"lm_head 102400x2048", 102400, 2048}}) {
            DeviceBuffer<std::byte> w(static_cast<std::size_t>(m.rows) * m.cols * 2, "weights");
            fill_finite(w.get(), w.bytes());
            DeviceBuffer<float> x(m.cols), y(m.rows);
            check_cuda(cudaMemset(x.get(), 0, x.bytes()), "cudaMemset");
            const WeightRef ref{w.get(), ElemType::bf16, m.rows, m.cols};
            const double ms = time_ms(reps, [&] { matmul(ref, x.get(), 1, y.get(), nullptr); });
            const double gbs = static_cast<double>(w.bytes()) / (ms * 1e6);
            std::printf("matvec %-24s %8.4f ms, %6.0f GB/s = %5.1f%% of the copy read rate\n", m.name, ms, gbs,
                        100.0 * gbs / (copy_gbs / 2));
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "moelens-gpu-probe: %s\n", e.what());
        return 1;
    }
}
