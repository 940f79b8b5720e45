#pragma once
// Byte-level BPE (the `model` of tokenizer.json with type "BPE"): each pre-tokenized
// piece's bytes start as single-byte tokens and the lowest-ranked adjacent pair is
// merged until none is left (equal ranks: leftmost first), as Hugging Face
// tokenizers does. Results per piece are cached: natural text repeats its words.
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/piece_cache.h"

namespace moelens::tokenizer {

class BpeModel {
public:
    static constexpr std::uint32_t kNone = 0xFFFFFFFFu;
    // Pieces longer than this are refused: the merge loop needs memory linear in the
    // piece, and no real text has a megabyte without a split point.
    static constexpr std::size_t kMaxPieceBytes = 1u << 20;

    // `byte_ids[b]`: id of the single-byte token for byte b, or kNone (then that byte
    // is dropped, as the reference does without an unk token).
    void set_byte_ids(const std::vector<std::uint32_t>& byte_ids);
    // Adds merge `left right -> merged` with rank = number of merges added before.
    void add_merge(std::uint32_t left, std::uint32_t right, std::uint32_t merged);
    // With ignore_merges, a piece that is itself a vocabulary token maps to it directly.
    void set_whole_piece_lookup(std::unordered_map<std::string, std::uint32_t> by_bytes)
    {
        m_whole_piece = std::move(by_bytes);
        m_ignore_merges = true;
    }
    std::size_t merge_count() const { return m_merge_count; }

    // Appends the tokens of one piece (raw bytes, not yet byte-level mapped). `cache`
    // may be null (another thread holds the shared one).
    void encode_piece(std::string_view piece, std::vector<std::uint32_t>& out, PieceCache* cache) const;

    // The shared cache for one encode call: locked for the whole call rather than
    // per piece; a concurrent call gets none and runs uncached.
    class CacheLease {
    public:
        explicit CacheLease(const BpeModel& m) : m_lock(m.m_cache_mutex, std::try_to_lock), m_model(m) {}
        PieceCache* get() const { return m_lock.owns_lock() ? &m_model.m_cache : nullptr; }

    private:
        std::unique_lock<std::mutex> m_lock;
        const BpeModel& m_model;
    };

private:
    struct MergeEntry {
        std::uint64_t key = kEmptyKey;
        std::uint32_t rank = 0;
        std::uint32_t merged = 0;
    };
    static constexpr std::uint64_t kEmptyKey = ~std::uint64_t{0};

    const MergeEntry* find_merge(std::uint32_t left, std::uint32_t right) const
    {
        const std::uint64_t key = (std::uint64_t{left} << 32) | right;
        std::size_t h = static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> 20) & m_mask;
        for (;;) {
            const MergeEntry& e = m_table[h];
            if (e.key == key) return &e;
            if (e.key == kEmptyKey) return nullptr;
            h = (h + 1) & m_mask;
        }
    }
    void grow();
    void merge_small(std::vector<std::uint32_t>& symbols) const;
    void merge_large(std::vector<std::uint32_t>& symbols) const;

    std::vector<std::uint32_t> m_byte_ids = std::vector<std::uint32_t>(256, kNone);
    std::vector<MergeEntry> m_table = std::vector<MergeEntry>(16);
    std::size_t m_mask = 15;
    std::size_t m_merge_count = 0;
    bool m_ignore_merges = false;
    std::unordered_map<std::string, std::uint32_t> m_whole_piece;

    mutable std::mutex m_cache_mutex;
    mutable PieceCache m_cache;
};

}  // namespace moelens::tokenizer
