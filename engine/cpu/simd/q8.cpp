#include "cpu/simd/q8.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "moelens/safetensors.h"

namespace moelens::cpu::simd {
namespace {

float weight_at(const WeightView& w, std::size_t i)
{
    switch (w.dtype) {
    case DType::BF16: return bf16_to_f32(reinterpret_cast<const std::uint16_t*>(w.data)[i]);
    case DType::F16: return f16_to_f32(reinterpret_cast<const std::uint16_t*>(w.data)[i]);
    default: return reinterpret_cast<const float*>(w.data)[i];
    }
}

// Round to nearest, clamped to [-127, 127] (-128 is never used, so a block and
// its negation quantise symmetrically).
int quantize_one(float v, float inv_scale)
{
    const float r = std::nearbyint(v * inv_scale);
    return static_cast<int>(std::clamp(r, -127.0f, 127.0f));
}

}  // namespace

Q8Matrix::Q8Matrix(int rows, int cols)
    : m_rows(rows), m_cols(cols),
      m_q(static_cast<std::size_t>(rows) * q8_blocks(cols) * kQ8Block, 128),
      m_scales(static_cast<std::size_t>(rows) * q8_blocks(cols), 0.0f)
{
}

void quantize_q8_rows(const WeightView& w, Q8Matrix& out, int row_begin, int row_end)
{
    quantize_q8_rows(w, out.values(), out.scales(), row_begin, row_end);
}

void quantize_q8_rows(const WeightView& w, std::uint8_t* values, float* row_scales, int row_begin, int row_end)
{
    const int blocks = q8_blocks(w.cols);
    float vals[kQ8Block];
    for (int r = row_begin; r < row_end; ++r) {
        std::uint8_t* q = values + static_cast<std::size_t>(r) * blocks * kQ8Block;
        float* scales = row_scales + static_cast<std::size_t>(r) * blocks;
        for (int b = 0; b < blocks; ++b) {
            const int c0 = b * kQ8Block;
            const int n = std::min(kQ8Block, w.cols - c0);
            float amax = 0.0f;
            for (int i = 0; i < n; ++i) {
                vals[i] = weight_at(w, static_cast<std::size_t>(r) * w.cols + c0 + i);
                amax = std::max(amax, std::fabs(vals[i]));
            }
            const float scale = amax / 127.0f;
            const float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
            scales[b] = scale;
            for (int i = 0; i < kQ8Block; ++i)
                q[c0 + i] = static_cast<std::uint8_t>((i < n ? quantize_one(vals[i], inv) : 0) + 128);
        }
    }
}

void Q8Activations::resize(int n_vectors, int n_cols)
{
    n = n_vectors;
    cols = n_cols;
    blocks = q8_blocks(n_cols);
    const std::size_t nb = static_cast<std::size_t>(n) * blocks;
    if (q.size() < nb * kQ8Block) q.resize(nb * kQ8Block);
    if (scale.size() < nb) scale.resize(nb);
    if (offset.size() < nb) offset.resize(nb);
    if (scaled_offset.size() < nb) scaled_offset.resize(nb);
}

void quantize_activation_blocks(const float* x, int cols, int t, int block_begin, int block_end, Q8Activations& out)
{
    // Runs once per int8 product input, so it is written to vectorise: |x| as
    // bits (ordered like the floats for non-negative values) for the block
    // maximum, and rounding half away from zero by truncation. Same rounding
    // bound as quantize_one (half a step).
    for (int b = block_begin; b < block_end; ++b) {
        const std::size_t at = static_cast<std::size_t>(t) * out.blocks + b;
        std::int8_t* q = out.q.data() + at * kQ8Block;
        const int c0 = b * kQ8Block;
        const int cnt = std::min(kQ8Block, cols - c0);
        std::uint32_t amax_bits = 0;
        for (int i = 0; i < cnt; ++i) {
            std::uint32_t bits;
            std::memcpy(&bits, &x[c0 + i], 4);
            amax_bits = std::max(amax_bits, bits & 0x7fffffffu);
        }
        float amax;
        std::memcpy(&amax, &amax_bits, 4);
        const float scale = amax / 127.0f;
        const float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
        int sum = 0;
        for (int i = 0; i < cnt; ++i) {
            const float v = x[c0 + i] * inv;
            const int r = static_cast<int>(v >= 0.0f ? v + 0.5f : v - 0.5f);
            q[i] = static_cast<std::int8_t>(r);
            sum += r;
        }
        for (int i = cnt; i < kQ8Block; ++i) q[i] = 0;
        out.scale[at] = scale;
        out.offset[at] = 128 * sum;
        out.scaled_offset[at] = scale * static_cast<float>(128 * sum);
    }
}

void quantize_activations(const float* x, int ldx, int n, int cols, Q8Activations& out)
{
    out.resize(n, cols);
    for (int t = 0; t < n; ++t) quantize_activation_blocks(x + static_cast<std::size_t>(t) * ldx, cols, t, 0, out.blocks, out);
}

}  // namespace moelens::cpu::simd
