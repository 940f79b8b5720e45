#include "cpu/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace moelens {
namespace {

// How long a worker keeps spinning for the next job before it sleeps: longer
// than the gaps between the jobs of one forward step, far shorter than the gap
// between user requests.
constexpr auto kSpinTime = std::chrono::microseconds(200);
// Spinning threads yield every so often, so that when the machine has more
// runnable threads than cores the thread being waited for gets the core.
constexpr unsigned kYieldEvery = 32;

inline void cpu_relax()
{
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#else
    std::this_thread::yield();
#endif
}

}  // namespace

ThreadPool::ThreadPool(unsigned threads)
{
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 1; i < threads; ++i) m_workers.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool()
{
    {
        std::lock_guard lock(m_mutex);
        m_stop.store(true, std::memory_order_release);
    }
    m_wake.notify_all();
    for (auto& t : m_workers) t.join();
}

void ThreadPool::run_chunk(unsigned index)
{
    // Chunk i covers whole grains [i*g/c, (i+1)*g/c) of the g grains.
    const int grains = (m_n + m_grain - 1) / m_grain;
    const int b = static_cast<int>(static_cast<long long>(grains) * index / m_chunks) * m_grain;
    const int e = std::min(m_n, static_cast<int>(static_cast<long long>(grains) * (index + 1) / m_chunks) * m_grain);
    if (b < e) (*m_fn)(b, e);
}

void ThreadPool::worker_loop(unsigned index)
{
    std::uint64_t seen = 0;
    for (;;) {
        // Spin, yielding and checking the clock every kYieldEvery pauses, then sleep.
        const auto spin_end = std::chrono::steady_clock::now() + kSpinTime;
        for (unsigned i = 1; m_generation.load(std::memory_order_acquire) == seen; ++i) {
            if (m_stop.load(std::memory_order_acquire)) return;
            if (i % kYieldEvery != 0) {
                cpu_relax();
                continue;
            }
            if (std::chrono::steady_clock::now() < spin_end) {
                std::this_thread::yield();
                continue;
            }
            std::unique_lock lock(m_mutex);
            m_wake.wait(lock, [&] {
                return m_stop.load(std::memory_order_relaxed) || m_generation.load(std::memory_order_relaxed) != seen;
            });
            break;
        }
        if (m_stop.load(std::memory_order_acquire)) return;
        seen = m_generation.load(std::memory_order_acquire);
        if (index < m_chunks) run_chunk(index);
        m_pending.fetch_sub(1, std::memory_order_acq_rel);
    }
}

void ThreadPool::parallel_for(int n, RangeFn fn, int grain)
{
    if (n <= 0) return;
    grain = std::max(1, grain);
    const int grains = (n + grain - 1) / grain;
    const unsigned chunks = std::min<unsigned>(size(), static_cast<unsigned>(grains));
    if (chunks <= 1) {
        fn(0, n);
        return;
    }
    std::lock_guard job(m_job_mutex);
    m_fn = &fn;
    m_n = n;
    m_grain = grain;
    m_chunks = chunks;
    m_pending.store(static_cast<unsigned>(m_workers.size()), std::memory_order_relaxed);
    {
        // Under the mutex, so a worker between its check and its wait cannot miss it.
        std::lock_guard lock(m_mutex);
        m_generation.fetch_add(1, std::memory_order_release);
    }
    m_wake.notify_all();
    run_chunk(0);
    for (unsigned i = 1; m_pending.load(std::memory_order_acquire) != 0; ++i) {
        if (i % kYieldEvery == 0)
            std::this_thread::yield();
        else
            cpu_relax();
    }
    m_fn = nullptr;
}

}  // namespace moelens
