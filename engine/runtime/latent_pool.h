#pragma once
// The paged MLA cache: one pool of fixed-size blocks shared by every sequence of
// a scheduler. A block holds kBlockTokens positions of every layer: per layer and
// position one row of kv_lora + dr floats = the normalised latent c_kv, then the
// roped shared key k_pe (DeepSeek-V2 section 2.1.2); per-head keys and values are
// never stored. A sequence owns a BlockTable: its blocks in position order.
//
// Blocks are reference counted so that sequences starting with the same tokens
// share them. A shared block is never written: before a row is written into it,
// the writer gets a private copy (copy-on-write), so sharing a partly filled
// block is as safe as sharing a full one.
//
// Memory grows with the blocks in use (allocated one block at a time, kept on a
// free list when released), never with the context limit.
#include <cstdint>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "moelens/events.h"
#include "moelens/model.h"

namespace moelens {

// Positions per block: a multiple of the CPU attention kernel's 16-position
// tiles, small enough that a short sequence wastes little.
constexpr int kBlockTokens = 16;

class BlockTable {
public:
    int blocks() const { return static_cast<int>(m_ids.size()); }
    int id(int i) const { return m_ids[static_cast<std::size_t>(i)]; }
    const std::vector<int>& ids() const { return m_ids; }
    // Base pointers in position order (what LatentCacheView::blocks points at).
    const float* const* bases() const { return m_bases.data(); }

private:
    friend class LatentPool;
    std::vector<int> m_ids;
    std::vector<const float*> m_bases;
};

class LatentPool {
public:
    // max_blocks = 0: no limit but memory.
    LatentPool(const ModelConfig& c, int max_blocks);
    LatentPool(const LatentPool&) = delete;
    LatentPool& operator=(const LatentPool&) = delete;

    // Makes positions [from, to) of `t` writable: appends blocks up to `to` and
    // replaces shared blocks among those holding [from, to) by private copies.
    // Returns false, changing nothing, when the pool has too few free blocks.
    bool prepare_write(BlockTable& t, int from, int to);
    // Drops the blocks past the first `tokens` positions (rewinding a sequence).
    void truncate(BlockTable& t, int tokens);
    void release(BlockTable& t) { truncate(t, 0); }
    // `dst` (empty) shares the blocks holding the first `tokens` positions of `src`.
    void share_prefix(const BlockTable& src, int tokens, BlockTable& dst);

    float* row(const BlockTable& t, int layer, int pos)
    {
        float* base = m_blocks[static_cast<std::size_t>(t.id(pos / kBlockTokens))].get();
        return base + layer_offset(layer) + static_cast<std::size_t>(pos % kBlockTokens) * m_row;
    }
    LatentCacheView view(const BlockTable& t, int layer, int n_ctx) const
    {
        return {t.bases(), layer_offset(layer), kBlockTokens, m_row, n_ctx};
    }

    int row_floats() const { return m_row; }
    std::size_t block_bytes() const { return m_block_floats * sizeof(float); }
    int blocks_allocated() const { return static_cast<int>(m_blocks.size()); }
    int blocks_free() const { return static_cast<int>(m_free.size()); }
    int blocks_used() const { return blocks_allocated() - blocks_free(); }
    int blocks_shared() const { return m_shared; }  // blocks held by more than one table
    int max_blocks() const { return m_max; }
    int refs(int block) const { return m_refs[static_cast<std::size_t>(block)]; }

    // What one sequence's table holds, with the pool's totals.
    CacheStats stats(const BlockTable& t, int tokens_held) const;

private:
    std::size_t layer_offset(int layer) const { return static_cast<std::size_t>(layer) * kBlockTokens * m_row; }
    int take();  // a free or new block with one reference; -1 when the limit is reached
    void drop(int block);
    int free_after_growth() const;  // blocks obtainable now

    std::vector<std::unique_ptr<float[]>> m_blocks;
    std::vector<int> m_refs;
    std::vector<int> m_free;
    int m_shared = 0;
    int m_layers = 0;
    int m_row = 0;
    std::size_t m_block_floats = 0;
    int m_max = 0;
    std::uint64_t m_mha_bytes_per_token = 0;  // all layers
    std::uint64_t m_gqa8_bytes_per_token = 0;
};

}  // namespace moelens
