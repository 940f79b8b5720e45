#pragma once
// A persistent pool of worker threads for data-parallel loops. A decode step is
// hundreds of jobs of tens of microseconds each, so workers spin for a short
// while after a job (the next one usually follows at once) and only then sleep on
// a condition variable; the caller spins for the workers' acknowledgements. The
// calling thread takes a share of every job.
// One job runs at a time (callers from several threads are serialised), so a
// Model shared by sessions on different threads stays correct.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace moelens {

// A non-owning reference to a callable void(int begin, int end): no allocation per call.
class RangeFn {
public:
    template <class F>
    RangeFn(const F& f) : m_obj(&f), m_call([](const void* o, int b, int e) { (*static_cast<const F*>(o))(b, e); })
    {
    }
    void operator()(int b, int e) const { m_call(m_obj, b, e); }

private:
    const void* m_obj;
    void (*m_call)(const void*, int, int);
};

class ThreadPool {
public:
    explicit ThreadPool(unsigned threads);  // total threads including the caller; 0 = hardware threads
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    unsigned size() const { return static_cast<unsigned>(m_workers.size()) + 1; }

    // Calls fn(begin, end) on disjoint chunks covering [0, n), at most one per
    // thread, and returns when all are done. Chunk boundaries are multiples of
    // `grain` (except the last).
    void parallel_for(int n, RangeFn fn, int grain = 1);

private:
    void worker_loop(unsigned index);
    void run_chunk(unsigned index);

    std::vector<std::thread> m_workers;
    std::mutex m_job_mutex;  // one job at a time
    std::mutex m_mutex;
    std::condition_variable m_wake;
    // The job is published by storing m_generation (release) after its fields;
    // every worker acknowledges every job by decrementing m_pending, so the
    // fields are never rewritten while a worker may still read them.
    std::atomic<std::uint64_t> m_generation{0};
    std::atomic<bool> m_stop{false};
    const RangeFn* m_fn = nullptr;
    int m_n = 0;
    int m_grain = 1;
    unsigned m_chunks = 0;
    std::atomic<unsigned> m_pending{0};
};

}  // namespace moelens
