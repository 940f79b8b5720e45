// The SIGBUS guard of util/mapping_guard.h.
#include "util/mapping_guard.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

namespace moelens {
namespace {

// A fixed table the handler can read without locks or allocation: a slot is
// free while its size is 0. Checkpoints have at most a few dozen shards.
constexpr int kSlots = 256;

struct Slot {
    std::atomic<std::uintptr_t> base{0};
    std::atomic<std::size_t> size{0};
    std::atomic<std::uint32_t> faults{0};
};

Slot g_slots[kSlots];
struct sigaction g_previous {};
std::once_flag g_installed;

void on_sigbus(int sig, siginfo_t* info, void* context)
{
    const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
    for (Slot& s : g_slots) {
        const std::size_t size = s.size.load(std::memory_order_acquire);
        const std::uintptr_t base = s.base.load(std::memory_order_acquire);
        if (size == 0 || addr < base || addr - base >= size) continue;
        // Past the file's new end: a private zero page in its place, and the read
        // is retried on return. mmap is a plain system call on Linux; the handler
        // touches nothing else but atomics.
        const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
        void* at = reinterpret_cast<void*>(addr & ~(page - 1));
        if (::mmap(at, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) break;
        s.faults.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    // Not one of ours: as if we had never been here.
    if (g_previous.sa_flags & SA_SIGINFO) {
        if (g_previous.sa_sigaction) return g_previous.sa_sigaction(sig, info, context);
    } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
        return g_previous.sa_handler(sig);
    }
    ::signal(SIGBUS, SIG_DFL);  // the fault repeats on return and ends the process as before
}

void install()
{
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGBUS, &sa, &g_previous);
}

}  // namespace

int guard_mapping(const void* base, std::size_t size)
{
    if (!base || size == 0) return -1;
    std::call_once(g_installed, install);
    static std::mutex claim;  // registrations race with each other, never with the handler's reads
    const std::lock_guard lock(claim);
    for (int i = 0; i < kSlots; ++i) {
        Slot& s = g_slots[i];
        if (s.size.load(std::memory_order_relaxed) != 0) continue;
        s.faults.store(0, std::memory_order_relaxed);
        s.base.store(reinterpret_cast<std::uintptr_t>(base), std::memory_order_release);
        s.size.store(size, std::memory_order_release);
        return i;
    }
    return -1;
}

void unguard_mapping(int slot)
{
    if (slot < 0 || slot >= kSlots) return;
    g_slots[slot].size.store(0, std::memory_order_release);
}

std::uint32_t mapping_faults(int slot)
{
    if (slot < 0 || slot >= kSlots) return 0;
    return g_slots[slot].faults.load(std::memory_order_relaxed);
}

}  // namespace moelens
