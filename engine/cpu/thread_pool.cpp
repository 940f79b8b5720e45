#include "cpu/thread_pool.h"

#include <algorithm>

namespace moelens {

ThreadPool::ThreadPool(unsigned threads)
{
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 1; i < threads; ++i) m_workers.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool()
{
    {
        std::lock_guard lock(m_mutex);
        m_stop = true;
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
        {
            std::unique_lock lock(m_mutex);
            m_wake.wait(lock, [&] { return m_stop || m_generation != seen; });
            if (m_stop) return;
            seen = m_generation;
            if (index >= m_chunks) continue;
        }
        run_chunk(index);
        std::lock_guard lock(m_mutex);
        if (--m_pending == 0) m_done.notify_one();
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
    {
        std::lock_guard lock(m_mutex);
        m_fn = &fn;
        m_n = n;
        m_grain = grain;
        m_chunks = chunks;
        m_pending = chunks - 1;
        ++m_generation;
    }
    m_wake.notify_all();
    run_chunk(0);
    std::unique_lock lock(m_mutex);
    m_done.wait(lock, [&] { return m_pending == 0; });
    m_fn = nullptr;
}

}  // namespace moelens
