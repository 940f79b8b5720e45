// moelens-bench kernels: the CPU matrix products alone, on V2-Lite shapes, held
// against the limits measured in the same run: decode matvecs (one token) as a
// fraction of the read bandwidth, prefill GEMMs (many tokens per weight read) as
// a fraction of the peak f32 FMA rate.
#include <cstdio>

#include "args.h"
#include "commands.h"
#include "cpu_measure.h"

namespace moelens::bench {
namespace {

struct Shape {
    const char* name;
    int rows;
    int cols;
};

// The largest matrices of a decode step of DeepSeek-V2-Lite, and the whole
// stack of 6 routed experts' gate/up rows (6 x 1408 = 8448) as one product.
const Shape kShapes[] = {
    {"q_proj 3072x2048", 3072, 2048},
    {"o_proj 2048x2048", 2048, 2048},
    {"experts up 8448x2048", 8448, 2048},
    {"dense down 2048x10944", 2048, 10944},
};

int run_kernels(const std::vector<std::string>& argv)
{
    const cli::Args args(argv, {"threads", "reps", "tokens", "mb"}, {"json"});
    const long long threads = args.get_int("threads", 0);
    const long long reps = args.get_int("reps", 7);
    const long long tokens = args.get_int("tokens", 512);
    const long long mb = args.get_int("mb", 1024);
    if (threads < 0 || threads > 1024) throw cli::UsageError("--threads must be 0 (all) .. 1024");
    if (reps < 1 || reps > 1000) throw cli::UsageError("--reps must be 1 .. 1000");
    if (tokens < 2 || tokens > 8192) throw cli::UsageError("--tokens must be 2 .. 8192");
    if (mb < 64) throw cli::UsageError("--mb must be >= 64");

    CpuProbe probe(static_cast<unsigned>(threads));
    const Summary bw = measure_read_bandwidth(probe, static_cast<int>(mb), 5);
    const Summary peak = measure_fma_peak(probe, 3);
    nlohmann::json rows = nlohmann::json::array();
    const bool json = args.flag("json");
    if (!json) {
        std::printf("threads %u, kernels %s\nread bandwidth %s GB/s, peak f32 FMA %s GFLOP/s\n", probe.threads(),
                    cpu_kernel_level().c_str(), format_summary(bw, 2).c_str(), format_summary(peak, 1).c_str());
        std::printf("%-24s %-5s %28s %7s %30s %7s\n", "matrix", "dtype", "matvec GB/s", "of bw",
                    "GEMM GFLOP/s", "of peak");
    }
    for (const Shape& s : kShapes)
        for (ProbeDtype d : {ProbeDtype::bf16, ProbeDtype::f16, ProbeDtype::f32, ProbeDtype::int8}) {
            const double wbytes = static_cast<double>(CpuProbe::weight_bytes(d, s.rows, s.cols));
            const double flops = 2.0 * s.rows * s.cols * static_cast<double>(tokens);
            std::vector<double> gbs, gflops;
            probe.product_pass(d, s.rows, s.cols, 1);  // warm-up, and the untimed setup
            for (long long i = 0; i < reps; ++i) gbs.push_back(wbytes / probe.product_pass(d, s.rows, s.cols, 1) / 1e9);
            probe.product_pass(d, s.rows, s.cols, static_cast<int>(tokens));
            for (long long i = 0; i < (reps + 1) / 2; ++i)
                gflops.push_back(flops / probe.product_pass(d, s.rows, s.cols, static_cast<int>(tokens)) / 1e9);
            const Summary mv = summarize(gbs), mm = summarize(gflops);
            if (json) {
                rows.push_back({{"matrix", s.name}, {"dtype", probe_dtype_name(d)},
                                {"matvec_gb_per_s", summary_json(mv)}, {"matvec_fraction_of_bandwidth", mv.median / bw.median},
                                {"gemm_tokens", tokens}, {"gemm_gflop_per_s", summary_json(mm)},
                                {"gemm_fraction_of_peak", mm.median / peak.median}});
            } else {
                std::printf("%-24s %-5s %28s %6.1f%% %30s %6.1f%%\n", s.name, probe_dtype_name(d),
                            format_summary(mv, 2).c_str(), 100.0 * mv.median / bw.median, format_summary(mm, 1).c_str(),
                            100.0 * mm.median / peak.median);
            }
        }
    if (json) {
        const nlohmann::json j = {{"threads", probe.threads()}, {"kernels", cpu_kernel_level()},
                                  {"read_gb_per_s", summary_json(bw)}, {"fma_peak_gflop_per_s", summary_json(peak)},
                                  {"products", rows}};
        std::printf("%s\n", j.dump(2).c_str());
    } else {
        std::printf("(median (min-max, n=repetitions); GEMM = %lld tokens per weight read; int8 GEMM counts its\n"
                    " multiply-adds like the others, though they are integer)\n", tokens);
    }
    return 0;
}

}  // namespace

const Command kKernelsCommand{"kernels", "[--threads T] [--tokens N] [--reps R] [--mb N] [--json]",
                              "decode matvec and prefill GEMM of each weight dtype vs bandwidth and peak FMA",
                              run_kernels};

}  // namespace moelens::bench
