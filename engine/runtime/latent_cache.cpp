#include "runtime/latent_cache.h"

#include <algorithm>

namespace moelens {

LatentCache::LatentCache(const ModelConfig& c, int max_tokens)
    : m_layers(c.num_hidden_layers), m_row(c.kv_lora_rank + c.qk_rope_head_dim), m_max(max_tokens)
{
    // The comparison caches hold, per token and layer, a key of dn + dr and a value
    // of dv per K/V head, in the same element type as ours.
    const std::uint64_t per_head = static_cast<std::uint64_t>(c.qk_nope_head_dim + c.qk_rope_head_dim + c.v_head_dim);
    m_mha_bytes_per_token = per_head * c.num_attention_heads * c.num_hidden_layers * sizeof(float);
    m_gqa8_bytes_per_token = per_head * std::min(8, c.num_attention_heads) * c.num_hidden_layers * sizeof(float);
}

bool LatentCache::reserve(int tokens)
{
    if (tokens <= m_capacity) return false;
    int cap = std::max(m_capacity, 64);
    while (cap < tokens) cap *= 2;
    cap = std::min(cap, m_max);
    for (auto& l : m_layers) l.resize(static_cast<std::size_t>(cap) * m_row);
    m_capacity = cap;
    return true;
}

CacheStats LatentCache::stats(int tokens_held) const
{
    CacheStats s;
    const std::uint64_t row_bytes = static_cast<std::uint64_t>(m_row) * sizeof(float) * m_layers.size();
    s.tokens_held = tokens_held;
    s.capacity_tokens = m_capacity;
    s.latent_bytes_used = row_bytes * tokens_held;
    s.latent_bytes_reserved = row_bytes * m_capacity;
    s.mha_equivalent_bytes = m_mha_bytes_per_token * tokens_held;
    s.gqa8_equivalent_bytes = m_gqa8_bytes_per_token * tokens_held;
    return s;
}

}  // namespace moelens
