#include "runtime/latent_pool.h"

#include <algorithm>
#include <cstring>

namespace moelens {

LatentPool::LatentPool(const ModelConfig& c, int max_blocks)
    : m_layers(c.num_hidden_layers), m_row(c.kv_lora_rank + c.qk_rope_head_dim), m_max(std::max(0, max_blocks))
{
    m_block_floats = static_cast<std::size_t>(m_layers) * kBlockTokens * m_row;
    // The comparison caches hold, per token and layer, a key of dn + dr and a value
    // of dv per K/V head, in the same element type as ours.
    const std::uint64_t per_head = static_cast<std::uint64_t>(c.qk_nope_head_dim + c.qk_rope_head_dim + c.v_head_dim);
    m_mha_bytes_per_token = per_head * c.num_attention_heads * c.num_hidden_layers * sizeof(float);
    m_gqa8_bytes_per_token = per_head * std::min(8, c.num_attention_heads) * c.num_hidden_layers * sizeof(float);
}

int LatentPool::free_after_growth() const
{
    const int growth = m_max == 0 ? 1 << 30 : m_max - blocks_allocated();
    return blocks_free() + std::max(0, growth);
}

int LatentPool::take()
{
    int b;
    if (!m_free.empty()) {
        b = m_free.back();
        m_free.pop_back();
    } else {
        if (m_max > 0 && blocks_allocated() >= m_max) return -1;
        // Not zeroed: every row is written before attention reads it.
        m_blocks.push_back(std::make_unique_for_overwrite<float[]>(m_block_floats));
        m_refs.push_back(0);
        b = blocks_allocated() - 1;
    }
    m_refs[static_cast<std::size_t>(b)] = 1;
    return b;
}

void LatentPool::drop(int b)
{
    int& r = m_refs[static_cast<std::size_t>(b)];
    if (r == 2) --m_shared;
    if (--r == 0) m_free.push_back(b);
}

bool LatentPool::prepare_write(BlockTable& t, int from, int to)
{
    if (to <= from) return true;
    const int first = from / kBlockTokens, last = (to - 1) / kBlockTokens;
    // Count first, so that a refusal changes nothing.
    int need = std::max(0, last + 1 - t.blocks());
    for (int i = first; i < std::min(last + 1, t.blocks()); ++i) need += refs(t.id(i)) > 1;
    if (need > free_after_growth()) return false;

    for (int i = first; i < std::min(last + 1, t.blocks()); ++i) {
        const int old = t.id(i);
        if (refs(old) == 1) continue;
        // Copy-on-write: the rows before `from` in this block stay valid for both.
        const int copy = take();
        std::memcpy(m_blocks[static_cast<std::size_t>(copy)].get(), m_blocks[static_cast<std::size_t>(old)].get(),
                    block_bytes());
        drop(old);
        t.m_ids[static_cast<std::size_t>(i)] = copy;
        t.m_bases[static_cast<std::size_t>(i)] = m_blocks[static_cast<std::size_t>(copy)].get();
    }
    while (t.blocks() <= last) {
        const int b = take();
        t.m_ids.push_back(b);
        t.m_bases.push_back(m_blocks[static_cast<std::size_t>(b)].get());
    }
    return true;
}

void LatentPool::truncate(BlockTable& t, int tokens)
{
    const int keep = (std::max(0, tokens) + kBlockTokens - 1) / kBlockTokens;
    while (t.blocks() > keep) {
        drop(t.m_ids.back());
        t.m_ids.pop_back();
        t.m_bases.pop_back();
    }
}

void LatentPool::share_prefix(const BlockTable& src, int tokens, BlockTable& dst)
{
    const int n = std::min(src.blocks(), (tokens + kBlockTokens - 1) / kBlockTokens);
    for (int i = 0; i < n; ++i) {
        const int b = src.id(i);
        if (++m_refs[static_cast<std::size_t>(b)] == 2) ++m_shared;
        dst.m_ids.push_back(b);
        dst.m_bases.push_back(src.m_bases[static_cast<std::size_t>(i)]);
    }
}

CacheStats LatentPool::stats(const BlockTable& t, int tokens_held) const
{
    CacheStats s;
    const std::uint64_t row_bytes = static_cast<std::uint64_t>(m_row) * sizeof(float) * m_layers;
    s.tokens_held = tokens_held;
    s.capacity_tokens = t.blocks() * kBlockTokens;
    s.latent_bytes_used = row_bytes * tokens_held;
    s.latent_bytes_reserved = static_cast<std::uint64_t>(t.blocks()) * block_bytes();
    s.mha_equivalent_bytes = m_mha_bytes_per_token * tokens_held;
    s.gqa8_equivalent_bytes = m_gqa8_bytes_per_token * tokens_held;
    s.bytes_per_token = row_bytes;
    s.block_tokens = kBlockTokens;
    s.blocks_held = t.blocks();
    for (int b : t.ids()) s.blocks_shared += refs(b) > 1;
    s.pool_blocks_used = blocks_used();
    s.pool_blocks_free = blocks_free();
    s.pool_bytes = static_cast<std::uint64_t>(blocks_allocated()) * block_bytes();
    return s;
}

}  // namespace moelens
