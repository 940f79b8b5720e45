// The spinning thread pool under load: many short jobs back to back (the decode
// pattern), jobs from two calling threads at once, and pauses long enough for
// the workers to fall asleep between jobs. Every index must be covered exactly
// once per job.
#include <QTest>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "cpu/thread_pool.h"

using namespace moelens;

namespace {

// Runs `jobs` jobs of sizes cycling through 1..97 and returns false at the
// first index covered other than once.
bool run_jobs(ThreadPool& pool, int jobs, std::chrono::microseconds pause_every_8th)
{
    std::vector<std::atomic<int>> hits(97);
    for (int j = 0; j < jobs; ++j) {
        const int n = 1 + j % 97;
        for (int i = 0; i < n; ++i) hits[i].store(0, std::memory_order_relaxed);
        pool.parallel_for(n, [&](int b, int e) {
            for (int i = b; i < e; ++i) hits[i].fetch_add(1, std::memory_order_relaxed);
        }, 1 + j % 5);
        for (int i = 0; i < n; ++i)
            if (hits[i].load(std::memory_order_relaxed) != 1) return false;
        if (j % 8 == 7 && pause_every_8th.count() > 0) std::this_thread::sleep_for(pause_every_8th);
    }
    return true;
}

}  // namespace

class TestThreadPool : public QObject {
    Q_OBJECT

private slots:
    void manyShortJobs()
    {
        for (unsigned threads : {2u, 3u, 8u}) {
            ThreadPool pool(threads);
            QVERIFY(run_jobs(pool, 20000, std::chrono::microseconds(0)));
        }
    }

    void workersSleepAndWake()
    {
        // 1 ms pauses outlast the spin, so workers go to sleep and must be woken.
        ThreadPool pool(3);
        QVERIFY(run_jobs(pool, 400, std::chrono::microseconds(1000)));
    }

    void twoCallersShareOnePool()
    {
        ThreadPool pool(2);
        std::atomic<bool> ok_a{false}, ok_b{false};
        std::thread a([&] { ok_a = run_jobs(pool, 5000, std::chrono::microseconds(0)); });
        std::thread b([&] { ok_b = run_jobs(pool, 5000, std::chrono::microseconds(0)); });
        a.join();
        b.join();
        QVERIFY(ok_a);
        QVERIFY(ok_b);
    }

    void destroysWhileIdleOrSleeping()
    {
        for (int i = 0; i < 50; ++i) {
            ThreadPool pool(4);
            QVERIFY(run_jobs(pool, 3, std::chrono::microseconds(0)));
            if (i % 2) std::this_thread::sleep_for(std::chrono::microseconds(500));
        }
    }
};

QTEST_GUILESS_MAIN(TestThreadPool)
#include "test_thread_pool.moc"
