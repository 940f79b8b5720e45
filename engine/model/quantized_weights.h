#pragma once
// int8 copies of a model's large matrices (LoadOptions::weights = int8), in the
// q8 format of cpu/simd/q8.h, held in one large-page buffer (cpu/large_pages.h):
// decode streams them every token. Quantised once at load; with a cache folder
// they are written to one safetensors file per checkpoint and read back (not
// mapped: a file mapping has 4 KiB pages) on later loads.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "cpu/large_pages.h"
#include "cpu/simd/q8.h"
#include "model/weights.h"
#include "moelens/model.h"
#include "moelens/safetensors.h"

namespace moelens {

class QuantizedWeights {
public:
    // Quantises (or maps from the cache) the attention projections except
    // kv_b_proj, every FFN and expert matrix and lm_head, and points their views
    // in `w` at the int8 copies. kv_b_proj (read per head and transposed), the
    // router and the embedding stay as stored; so does a matrix whose width is
    // not a multiple of 64. Throws ModelError when the cache cannot be written.
    static std::unique_ptr<QuantizedWeights> apply(ModelWeights& w, const Checkpoint& ckpt,
                                                   const std::filesystem::path& model_dir, const LoadOptions& options);

    std::uint64_t bytes() const { return m_bytes; }
    bool from_cache() const { return m_from_cache; }
    int matrices() const { return m_matrices; }

private:
    cpu::LargePageBuffer m_buffer;  // every matrix's values then scales, 64-byte aligned
    std::uint64_t m_bytes = 0;
    int m_matrices = 0;
    bool m_from_cache = false;
};

}  // namespace moelens
