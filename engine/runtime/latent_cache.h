#pragma once
// The MLA cache of one sequence: per layer and position one row of
// kv_lora + dr floats = the normalised latent c_kv, then the roped shared key k_pe.
// That is all MLA needs to keep (DeepSeek-V2 section 2.1.2); per-head keys and
// values are never stored. Capacity grows by doubling up to the context limit,
// so appending is amortised allocation-free.
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "moelens/events.h"

namespace moelens {

class LatentCache {
public:
    LatentCache(const ModelConfig& c, int max_tokens);

    // Makes room for `tokens` positions (<= max_tokens). Returns true if it grew.
    bool reserve(int tokens);
    float* row(int layer, int pos) { return m_layers[layer].data() + static_cast<std::size_t>(pos) * m_row; }
    const float* row(int layer, int pos) const { return m_layers[layer].data() + static_cast<std::size_t>(pos) * m_row; }
    LatentCacheView view(int layer, int n_ctx) const { return {m_layers[layer].data(), m_row, n_ctx}; }

    int row_floats() const { return m_row; }
    int capacity() const { return m_capacity; }
    int max_tokens() const { return m_max; }
    CacheStats stats(int tokens_held) const;

private:
    std::vector<std::vector<float>> m_layers;  // [layers][capacity, kv_lora + dr]
    int m_row = 0;
    int m_capacity = 0;
    int m_max = 0;
    std::uint64_t m_mha_bytes_per_token = 0;   // all layers
    std::uint64_t m_gqa8_bytes_per_token = 0;
};

}  // namespace moelens
