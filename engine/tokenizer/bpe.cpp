#include "tokenizer/bpe.h"

#include <queue>

#include <fmt/format.h>

#include "moelens/error.h"

namespace moelens::tokenizer {

void BpeModel::set_byte_ids(const std::vector<std::uint32_t>& byte_ids) { m_byte_ids = byte_ids; }

void BpeModel::grow()
{
    std::vector<MergeEntry> old = std::move(m_table);
    m_table.assign(old.size() * 2, MergeEntry{});
    m_mask = m_table.size() - 1;
    for (const MergeEntry& e : old) {
        if (e.key == kEmptyKey) continue;
        std::size_t h = static_cast<std::size_t>((e.key * 0x9E3779B97F4A7C15ull) >> 20) & m_mask;
        while (m_table[h].key != kEmptyKey) h = (h + 1) & m_mask;
        m_table[h] = e;
    }
}

void BpeModel::add_merge(std::uint32_t left, std::uint32_t right, std::uint32_t merged)
{
    if ((m_merge_count + 1) * 2 > m_table.size()) grow();
    const std::uint64_t key = (std::uint64_t{left} << 32) | right;
    std::size_t h = static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> 20) & m_mask;
    const auto rank = static_cast<std::uint32_t>(m_merge_count++);
    while (m_table[h].key != kEmptyKey) {
        // A repeated pair takes its last rank: the reference collects the merge list
        // into a hash map, where later entries overwrite earlier ones.
        if (m_table[h].key == key) {
            m_table[h].rank = rank;
            m_table[h].merged = merged;
            return;
        }
        h = (h + 1) & m_mask;
    }
    m_table[h] = MergeEntry{key, rank, merged};
}

// For the usual short pieces a flat scan over the pair ranks beats a heap: each
// merge rescans n ranks but looks up only the two pairs it changed.
void BpeModel::merge_small(std::vector<std::uint32_t>& symbols) const
{
    std::uint32_t ranks[64];  // ranks[i]: rank of (symbols[i], symbols[i + 1]), kNone if no merge
    std::uint32_t merged_ids[64];
    std::size_t n = symbols.size();
    auto lookup = [&](std::size_t i) {
        const MergeEntry* e = find_merge(symbols[i], symbols[i + 1]);
        ranks[i] = e ? e->rank : kNone;
        merged_ids[i] = e ? e->merged : 0;
    };
    for (std::size_t i = 0; i + 1 < n; ++i) lookup(i);
    while (n > 1) {
        std::size_t best = 0;
        for (std::size_t i = 1; i + 1 < n; ++i)
            if (ranks[i] < ranks[best]) best = i;
        if (ranks[best] == kNone) break;
        symbols[best] = merged_ids[best];
        for (std::size_t i = best + 1; i + 1 < n; ++i) symbols[i] = symbols[i + 1];
        for (std::size_t i = best + 1; i + 2 < n; ++i) {
            ranks[i] = ranks[i + 1];
            merged_ids[i] = merged_ids[i + 1];
        }
        --n;
        if (best + 1 < n) lookup(best);
        if (best > 0) lookup(best - 1);
    }
    symbols.resize(n);
}

// O(n log n) for long pieces: a doubly linked symbol list and a heap of candidate
// pairs ordered by (rank, position); stale candidates are skipped when popped.
void BpeModel::merge_large(std::vector<std::uint32_t>& symbols) const
{
    const std::size_t n = symbols.size();
    std::vector<std::uint32_t> prev(n), next(n);
    for (std::size_t i = 0; i < n; ++i) {
        prev[i] = i == 0 ? kNone : static_cast<std::uint32_t>(i - 1);
        next[i] = i + 1 == n ? kNone : static_cast<std::uint32_t>(i + 1);
    }
    struct Candidate {
        std::uint32_t rank, left, right, left_id, right_id;
        bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
    auto consider = [&](std::uint32_t left) {
        if (left == kNone || next[left] == kNone) return;
        const std::uint32_t right = next[left];
        if (const MergeEntry* e = find_merge(symbols[left], symbols[right]))
            heap.push({e->rank, left, right, symbols[left], symbols[right]});
    };
    for (std::uint32_t i = 0; i + 1 < n; ++i) consider(i);
    constexpr std::uint32_t kDead = kNone;
    while (!heap.empty()) {
        const Candidate c = heap.top();
        heap.pop();
        if (symbols[c.left] != c.left_id || symbols[c.right] != c.right_id || next[c.left] != c.right) continue;
        symbols[c.left] = find_merge(c.left_id, c.right_id)->merged;
        symbols[c.right] = kDead;
        next[c.left] = next[c.right];
        if (next[c.right] != kNone) prev[next[c.right]] = c.left;
        consider(prev[c.left]);
        consider(c.left);
    }
    std::size_t w = 0;
    for (std::uint32_t i = 0; i != kNone; i = next[i]) symbols[w++] = symbols[i];
    symbols.resize(w);
}

void BpeModel::encode_piece(std::string_view piece, std::vector<std::uint32_t>& out, PieceCache* cache) const
{
    if (piece.size() > kMaxPieceBytes)
        throw TokenizerError(fmt::format("pre-tokenized piece of {} bytes exceeds the BPE limit of {} bytes "
                                         "(one 'word' without any split point)",
                                         piece.size(), kMaxPieceBytes));
    if (piece.size() == 1 && !m_ignore_merges) {
        const std::uint32_t id = m_byte_ids[static_cast<std::uint8_t>(piece[0])];
        if (id != kNone) out.push_back(id);
        return;
    }
    const bool cacheable = cache && piece.size() <= PieceCache::kMaxPieceBytes;
    std::uint64_t h = 0;
    if (cacheable) {
        h = PieceCache::hash(piece);
        std::size_t count;
        if (const std::uint32_t* ids = cache->find(piece, h, count)) {
            out.insert(out.end(), ids, ids + count);
            return;
        }
    }
    const std::size_t first = out.size();
    if (m_ignore_merges) {
        auto it = m_whole_piece.find(std::string(piece));
        if (it != m_whole_piece.end()) out.push_back(it->second);
    }
    if (out.size() == first) {
        thread_local std::vector<std::uint32_t> symbols;
        symbols.clear();
        for (char c : piece) {
            const std::uint32_t id = m_byte_ids[static_cast<std::uint8_t>(c)];
            if (id != kNone) symbols.push_back(id);
        }
        if (symbols.size() <= 64) merge_small(symbols);
        else merge_large(symbols);
        out.insert(out.end(), symbols.begin(), symbols.end());
    }
    if (cacheable) cache->insert(piece, h, out.data() + first, out.size() - first);
}

}  // namespace moelens::tokenizer
