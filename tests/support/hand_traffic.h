#pragma once
// What an expert-parallel exchange must move, counted by hand from routing alone
// (moelens/expert_traffic.h defines the figures): each token-layer's row goes
// once from its home to every other device holding one of its experts, and every
// expert's output comes back to the home. Tests compare the engine's counts and
// the Devices panel with this.
#include <cstdint>
#include <set>
#include <vector>

#include "moelens/events.h"

namespace moelens::testing {

struct HandTraffic {
    int devices;
    std::vector<std::uint64_t> dispatch, combine;  // [from * D + to]
    std::vector<std::uint64_t> products;           // [device]
    std::vector<std::uint64_t> touched;            // [0..D]
    std::uint64_t token_layers = 0;

    explicit HandTraffic(int d)
        : devices(d), dispatch(std::size_t(d) * d), combine(std::size_t(d) * d), products(std::size_t(d)), touched(std::size_t(d) + 1)
    {
    }

    // One token-layer routed to `r.experts`, from `home`; device_of[e] is expert e's device.
    void add(const RoutingRecord& r, const std::vector<int>& device_of, int home)
    {
        const std::size_t D = std::size_t(devices);
        std::set<int> reached;
        for (int e : r.experts) {
            const int d = device_of[std::size_t(e)];
            reached.insert(d);
            ++combine[std::size_t(d) * D + std::size_t(home)];
            ++products[std::size_t(d)];
        }
        for (int d : reached) ++dispatch[std::size_t(home) * D + std::size_t(d)];
        ++touched[reached.size()];
        ++token_layers;
    }
    template <class Records>
    void add_all(const Records& records, const std::vector<int>& device_of, int home)
    {
        for (const RoutingRecord& r : records) add(r, device_of, home);
    }
};

}  // namespace moelens::testing
