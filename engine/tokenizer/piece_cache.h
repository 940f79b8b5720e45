#pragma once
// Cache of BPE results per pre-tokenized piece: an open-addressing table over two
// flat arenas (piece bytes, token ids), so a lookup is one hash and usually one
// cache line, and an insert allocates nothing once the arenas have grown. When
// full it is cleared as a whole (natural text keeps re-filling it with its
// frequent words). Not thread-safe: BpeModel hands it to one encode call at a time.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace moelens::tokenizer {

class PieceCache {
public:
    static constexpr std::size_t kMaxPieceBytes = 255;

    static std::uint64_t hash(std::string_view s)
    {
        // 64-bit FNV-1a over 8-byte words, then a final mix: fast for short keys.
        std::uint64_t h = 0xcbf29ce484222325ull ^ s.size();
        std::size_t i = 0;
        for (; i + 8 <= s.size(); i += 8) {
            std::uint64_t w;
            std::memcpy(&w, s.data() + i, 8);
            h = (h ^ w) * 0x100000001b3ull;
            h ^= h >> 29;
        }
        std::uint64_t tail = 0;
        std::memcpy(&tail, s.data() + i, s.size() - i);
        h = (h ^ tail) * 0x9E3779B97F4A7C15ull;
        return h ^ (h >> 32);
    }

    // Ids cached for `piece`, or nullptr.
    const std::uint32_t* find(std::string_view piece, std::uint64_t h, std::size_t& count) const
    {
        if (m_slots.empty()) return nullptr;
        for (std::size_t i = h & kMask;; i = (i + 1) & kMask) {
            const Slot& s = m_slots[i];
            if (s.key_len == kEmpty) return nullptr;
            if (s.hash == h && s.key_len == piece.size() &&
                std::memcmp(m_keys.data() + s.key_offset, piece.data(), piece.size()) == 0) {
                count = s.id_count;
                return m_ids.data() + s.id_offset;
            }
        }
    }

    void insert(std::string_view piece, std::uint64_t h, const std::uint32_t* ids, std::size_t count)
    {
        if (piece.size() > kMaxPieceBytes || count > 0xFFFF) return;
        if (m_slots.empty()) m_slots.assign(kSlots, Slot{});
        if (m_entries >= kMaxEntries) clear();
        std::size_t i = h & kMask;
        while (m_slots[i].key_len != kEmpty) i = (i + 1) & kMask;
        m_slots[i] = Slot{h, static_cast<std::uint32_t>(m_keys.size()), static_cast<std::uint32_t>(m_ids.size()),
                          static_cast<std::uint16_t>(piece.size()), static_cast<std::uint16_t>(count)};
        m_keys.append(piece);
        m_ids.insert(m_ids.end(), ids, ids + count);
        ++m_entries;
    }

    void clear()
    {
        std::fill(m_slots.begin(), m_slots.end(), Slot{});
        m_keys.clear();
        m_ids.clear();
        m_entries = 0;
    }

private:
    static constexpr std::size_t kSlots = std::size_t{1} << 18;
    static constexpr std::size_t kMask = kSlots - 1;
    static constexpr std::size_t kMaxEntries = kSlots / 2;
    static constexpr std::uint16_t kEmpty = 0xFFFF;  // key_len of an empty slot (keys are <= 255 bytes)

    struct Slot {
        std::uint64_t hash = 0;
        std::uint32_t key_offset = 0;
        std::uint32_t id_offset = 0;
        std::uint16_t key_len = kEmpty;
        std::uint16_t id_count = 0;
    };
    std::vector<Slot> m_slots;
    std::string m_keys;
    std::vector<std::uint32_t> m_ids;
    std::size_t m_entries = 0;
};

}  // namespace moelens::tokenizer
