#pragma once
// The int8 weight format ("q8"): each row is cut into blocks of kQ8Block values
// along the input dimension; a block stores one f32 scale (max |w| / 127) and
// its values rounded to [-127, 127]. Rows are padded with zeros to a whole
// number of blocks. 64 values + 4 bytes of scale = 1.0625 bytes per weight, the
// same as llama.cpp's Q8_0 (32 + 2), with an f32 scale.
//
// Values are stored offset by +128 (as u8, 1..255): VNNI's vpdpbusd multiplies
// unsigned by signed bytes, so the weights take the unsigned side and the
// activations (quantised per block to s8 in the same way) the signed side. The
// offset is removed per block with the activation's block sum, which is known
// once per product and costs the weights nothing:
//   sum_i (q_i + 128) a_i = sum_i q_i a_i + 128 sum_i a_i.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "backend/backend.h"

namespace moelens::cpu::simd {

constexpr int kQ8Block = 64;

inline int q8_blocks(int cols) { return (cols + kQ8Block - 1) / kQ8Block; }

// A q8 matrix [rows, cols] as the kernels read it. Row r's values start at
// q + r * blocks * kQ8Block, its scales at scales + r * blocks.
struct Q8View {
    const std::uint8_t* q = nullptr;
    const float* scales = nullptr;
    int rows = 0;
    int cols = 0;
    int blocks = 0;

    Q8View row_slice(int first, int count) const
    {
        const std::size_t r = static_cast<std::size_t>(first);
        return {q + r * blocks * kQ8Block, scales + r * blocks, count, cols, blocks};
    }
};

// An owned q8 matrix (quantised from F32/F16/BF16 at load time).
class Q8Matrix {
public:
    Q8Matrix() = default;
    Q8Matrix(int rows, int cols);

    Q8View view() const { return {m_q.data(), m_scales.data(), m_rows, m_cols, q8_blocks(m_cols)}; }
    std::uint8_t* values() { return m_q.data(); }
    float* scales() { return m_scales.data(); }
    int rows() const { return m_rows; }
    int cols() const { return m_cols; }
    std::size_t bytes() const { return m_q.size() + m_scales.size() * sizeof(float); }

private:
    int m_rows = 0;
    int m_cols = 0;
    std::vector<std::uint8_t> m_q;   // [rows, blocks * kQ8Block], value + 128
    std::vector<float> m_scales;     // [rows, blocks]
};

// n activation vectors quantised per block to s8 (max |x| / 127 per block),
// with each block's integer sum for the +128 offset of the weights. Sized once
// and reused: resize() allocates only when it grows.
struct Q8Activations {
    int n = 0;
    int cols = 0;
    int blocks = 0;
    std::vector<std::int8_t> q;     // [n, blocks * kQ8Block], zero padded
    std::vector<float> scale;       // [n, blocks]
    std::vector<std::int32_t> offset;  // [n, blocks]: 128 * sum(q) of the block
    std::vector<float> scaled_offset;  // [n, blocks]: scale * offset, what the vector kernels subtract

    void resize(int n_vectors, int n_cols);
    const std::int8_t* q_row(int t) const { return q.data() + static_cast<std::size_t>(t) * blocks * kQ8Block; }
    const float* scale_row(int t) const { return scale.data() + static_cast<std::size_t>(t) * blocks; }
    const std::int32_t* offset_row(int t) const { return offset.data() + static_cast<std::size_t>(t) * blocks; }
    const float* scaled_offset_row(int t) const { return scaled_offset.data() + static_cast<std::size_t>(t) * blocks; }
};

// Quantises rows [row_begin, row_end) of `w` (F32, F16 or BF16) into `out`
// (already sized to w.rows x w.cols).
void quantize_q8_rows(const WeightView& w, Q8Matrix& out, int row_begin, int row_end);
// The same into caller-owned storage laid out as Q8Matrix's: values
// [w.rows, q8_blocks(w.cols) * kQ8Block], scales [w.rows, q8_blocks(w.cols)].
void quantize_q8_rows(const WeightView& w, std::uint8_t* values, float* scales, int row_begin, int row_end);
// Quantises n vectors of `cols` floats (vector t at x + t * ldx).
void quantize_activations(const float* x, int ldx, int n, int cols, Q8Activations& out);
// Blocks [block_begin, block_end) of vector t of `out` (already sized by resize)
// from x, that vector's `cols` floats: threads can quantise disjoint blocks.
void quantize_activation_blocks(const float* x, int cols, int t, int block_begin, int block_end, Q8Activations& out);

}  // namespace moelens::cpu::simd
