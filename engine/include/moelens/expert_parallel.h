#pragma once
// Expert parallelism (DeepSeek-V2 section 2.2.2): the routed experts spread
// over D devices, every MoE layer a dispatch -> local experts -> combine, and the
// traffic it costs. docs/multi-gpu.md has the design and the volume model.
//
// Placement: routed expert group g (n_group contiguous groups, the paper's
// devices) lives on device g mod D; a model without groups (greedy routing)
// splits its experts into D contiguous blocks. By group is the default because it
// keeps device-limited routing a guarantee: a token whose experts come from at
// most M groups touches at most M devices. Attention, the shared experts, the
// embedding and lm_head are replicated on every device (data-parallel attention:
// each sequence lives on one device, its "home", and only MoE rows move); they
// are small next to the routed experts (V2: 5% of the weights), and replicating
// them needs no exchange outside the MoE layers.
//
// Virtual devices (SchedulerOptions::virtual_devices) are partitions of the CPU
// engine: each device's experts run as one job over the shared thread pool in
// turn, rows move between their buffers in memory, and the traffic is counted as
// the real exchange would move it. Each has its memory accounted (its weights,
// and every step's activations of the rows it receives) against an optional
// budget (SchedulerOptions::virtual_device_memory), and may be taken offline
// (Scheduler::lose_device): the faults a real device has, so that what follows
// them can be tested on a CPU. Outputs are bit-identical to one device: every
// (row, expert) product is the same computation, and results are added back in
// the same order whatever D is.
#include <cstdint>
#include <vector>

#include "moelens/expert_traffic.h"
#include "moelens/model.h"

namespace moelens {

struct ExpertPlacement {
    int devices = 1;
    int n_experts = 0;                    // routed experts per MoE layer
    std::vector<int> device_of;           // [n_experts]: the same for every MoE layer
    bool device_limited = false;          // a group-limited model with whole groups per device:
                                          // a token's experts lie on at most M (its device limit) devices
    std::vector<std::uint64_t> params;    // [devices] parameters held: replicated part + its experts
    std::uint64_t replicated_params = 0;  // attention, shared experts, dense layers, embedding, lm_head (each device)
    std::vector<std::uint64_t> weight_bytes;  // [devices] params at the checkpoint's bytes per parameter
    int device(int expert) const { return device_of[static_cast<std::size_t>(expert)]; }
};

// The default placement of `info`'s experts over `devices` (1..n_routed_experts).
// Throws Error naming the count and its limit otherwise.
ExpertPlacement place_experts(const ModelInfo& info, int devices);

}  // namespace moelens
