#include "model/resident_weights.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <spdlog/fmt/fmt.h>

#include "cpu/thread_pool.h"
#include "moelens/error.h"
#include "moelens/logging.h"

namespace moelens {
namespace {

constexpr std::uint64_t kGiB = std::uint64_t(1) << 30;

std::size_t align64(std::size_t n) { return (n + 63) / 64 * 64; }

std::size_t matrix_bytes(const WeightView& v)
{
    return static_cast<std::size_t>(v.rows) * v.cols * dtype_size(v.dtype);
}

// What the system keeps for everything else when automatic decides: a tenth of
// what is available, at least 1 GiB.
bool fits(std::uint64_t bytes, std::uint64_t available)
{
    const std::uint64_t reserve = std::max(kGiB, available / 10);
    return available > reserve && bytes <= available - reserve;
}

std::string gib(std::uint64_t b) { return fmt::format("{:.2f} GiB", static_cast<double>(b) / static_cast<double>(kGiB)); }

}  // namespace

std::unique_ptr<ResidentWeights> ResidentWeights::apply(ModelWeights& w, const Checkpoint& ckpt,
                                                        const LoadOptions& options)
{
    if (options.memory == WeightsMemory::mapped) return nullptr;
    std::vector<WeightView*> copies;  // in the order decode reads them
    std::size_t total = 0;
    for (const NamedMatrix& m : matrices(w))
        if (m.view->dtype != DType::U8) {  // int8 matrices already live in large pages
            copies.push_back(m.view);
            total = align64(total + matrix_bytes(*m.view));
        }
    if (copies.empty()) return nullptr;
    const std::uint64_t available = cpu::available_memory_bytes();
    if (options.memory == WeightsMemory::automatic && !fits(total, available)) {
        engine_log().info("weights stay file-mapped: {} would not fit in the {} of memory available", gib(total),
                          gib(available));
        return nullptr;
    }
    // Asked for outright: refuse what the kernel would overcommit and then kill us for.
    if (available > 0 && total > available)
        throw BackendError("cannot hold the weights in memory: " + gib(total) + " needed, " + gib(available) +
                           " available (load them file-mapped instead)");

    const auto t0 = std::chrono::steady_clock::now();
    auto rw = std::make_unique<ResidentWeights>();
    rw->m_buffer = cpu::LargePageBuffer(total);
    ThreadPool pool(options.threads);
    std::size_t offset = 0;
    for (WeightView* v : copies) {
        std::byte* to = rw->m_buffer.data() + offset;
        const std::byte* from = v->data;
        const std::size_t row = static_cast<std::size_t>(v->cols) * dtype_size(v->dtype);
        pool.parallel_for(v->rows, [&](int b, int e) { ckpt.read(from + row * b, row * (e - b), to + row * b); }, 64);
        v->data = to;
        offset = align64(offset + matrix_bytes(*v));
        if (options.progress && !options.progress(LoadProgress{offset, total, "copying weights into memory"}))
            throw Cancelled();
    }
    engine_log().info("{} of weights copied into large-page memory in {:.1f} s", gib(total),
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    return rw;
}

}  // namespace moelens
