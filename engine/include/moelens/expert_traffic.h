#pragma once
// What the expert-parallel exchange moved (moelens/expert_parallel.h): per device
// pair, per device, per token. A scheduler keeps one for all its steps, and each
// sequence one for its current generation (GenerationResult::traffic). Plain
// values, cheap to copy across threads.
#include <cstdint>
#include <vector>

namespace moelens {

// Bytes are of the activations as the engine exchanges them (f32 on the CPU:
// 4 x hidden per row).
struct ExpertTraffic {
    int devices = 1;
    int home = -1;                         // one sequence's: the device its attention runs on; -1 for a scheduler's sum
    std::uint64_t token_layers = 0;        // (token, MoE layer) pairs routed
    std::vector<std::uint64_t> dispatch_rows;  // [from * D + to]: rows sent to the experts' device (once per device)
    std::vector<std::uint64_t> combine_rows;   // [from * D + to]: expert outputs sent back (one per remote expert)
    std::vector<std::uint64_t> expert_rows;    // [device]: (row, expert) products computed there
    std::vector<std::uint64_t> touched;        // [0..D]: token-layers whose experts were on that many devices
    std::uint64_t limit_exceeded = 0;          // token-layers on more devices than their device limit (a bug if > 0)
    std::uint64_t row_bytes = 0;               // bytes of one row (hidden x element size)
    // [device] the most activation memory one step's expert rows took there: rows
    // received x (input, output, gate and up activations). A scheduler's only.
    std::vector<std::uint64_t> peak_activation_bytes;
    double dispatch_seconds = 0.0;             // gathering rows into the devices' buffers (a scheduler's only)
    double combine_seconds = 0.0;              // adding the outputs back into their rows (a scheduler's only)
    std::vector<double> expert_seconds;        // [device] its local experts (a scheduler's only)

    // Zero counts for `devices` devices.
    static ExpertTraffic empty(int devices, std::uint64_t row_bytes);

    std::uint64_t dispatch_bytes() const;      // between different devices only
    std::uint64_t combine_bytes() const;
    double mean_devices_touched() const;
    // Busiest device's (row, expert) products over the mean: 1 = balanced.
    double imbalance() const;
};

}  // namespace moelens
