#pragma once
// int8 copies of a model's large matrices (LoadOptions::weights = int8), in the
// q8 format of cpu/simd/q8.h. Quantised once at load; with a cache folder they
// are written to one safetensors file per checkpoint and mapped on later loads.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

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
    bool from_cache() const { return m_cache != nullptr; }
    int matrices() const { return m_matrices; }

private:
    std::vector<cpu::simd::Q8Matrix> m_owned;  // when quantised in this load
    std::unique_ptr<SafetensorsFile> m_cache;  // when mapped from the cache
    std::uint64_t m_bytes = 0;
    int m_matrices = 0;
};

}  // namespace moelens
