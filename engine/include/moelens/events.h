#pragma once
// What the engine reports for every prefilled or generated token: the routing
// decision of every MoE layer and the latent-cache statistics. Plain values, cheap
// to copy and to move across threads.
#include <cstdint>
#include <vector>

namespace moelens {

// One MoE layer's decision for one token. The three vectors have top-k entries,
// in descending gate-weight order.
struct RoutingRecord {
    int layer = 0;                 // 0-based decoder-layer index
    std::vector<int> experts;      // routed expert ids
    std::vector<float> weights;    // gate weights, routed_scaling_factor included
    std::vector<int> groups;       // group (= device in device-limited routing) of each expert
};

// Key/value cache use after a token. Bytes are in the cache's element type: f32
// in the CPU's paged pool (runtime/latent_pool.h), the device cache's type on a GPU.
struct CacheStats {
    std::uint64_t latent_bytes_used = 0;      // tokens_held x layers x (kv_lora + d_r) x element size
    std::uint64_t latent_bytes_reserved = 0;  // the blocks this sequence holds (shared ones included)
    int tokens_held = 0;
    int capacity_tokens = 0;                  // tokens those blocks hold
    std::uint64_t mha_equivalent_bytes = 0;   // plain multi-head K+V: H x (d_n + d_r + d_v) per token per layer
    std::uint64_t gqa8_equivalent_bytes = 0;  // grouped-query with 8 K/V heads
    std::uint64_t bytes_per_token = 0;        // latent bytes per token, all layers
    int block_tokens = 0;                     // positions per cache block
    int blocks_held = 0;                      // this sequence's blocks
    int blocks_shared = 0;                    // of those, held by other sequences too (a shared prefix)
    int pool_blocks_used = 0;                 // the pool: blocks in use by any sequence
    int pool_blocks_free = 0;                 //           allocated and free for reuse
    std::uint64_t pool_bytes = 0;             //           all allocated blocks
};

struct TokenEvent {
    int token = 0;
    int position = 0;        // absolute 0-based position of this token
    bool is_prompt = false;  // prefilled (true) or generated (false)
    std::vector<RoutingRecord> routing;  // one per MoE layer, ascending layer order
    CacheStats cache;
};

}  // namespace moelens
