// Matrix-vector products with the weight in its stored dtype and f32 activations.
// The dtype is resolved once per call, outside the inner loops.
#include <cstdint>
#include <cstring>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/simd/kernels.h"

namespace moelens::cpu {
namespace {

// F16 -> f32 through a 256 KiB table built once: exact and branch-free.
const float* f16_table()
{
    static const std::vector<float> table = [] {
        std::vector<float> t(65536);
        for (std::uint32_t i = 0; i < 65536; ++i) t[i] = f16_to_f32(static_cast<std::uint16_t>(i));
        return t;
    }();
    return table.data();
}

struct LoadF32 {
    const float* p;
    float operator()(std::size_t i) const { return p[i]; }
};
struct LoadBF16 {
    const std::uint16_t* p;
    float operator()(std::size_t i) const
    {
        const std::uint32_t bits = std::uint32_t(p[i]) << 16;
        float f;
        std::memcpy(&f, &bits, 4);
        return f;
    }
};
struct LoadF16 {
    const std::uint16_t* p;
    const float* table;
    float operator()(std::size_t i) const { return table[p[i]]; }
};

template <class F>
void with_loader(const WeightView& w, const F& f)
{
    switch (w.dtype) {
    case DType::BF16: f(LoadBF16{reinterpret_cast<const std::uint16_t*>(w.data)}); break;
    case DType::F16: f(LoadF16{reinterpret_cast<const std::uint16_t*>(w.data), f16_table()}); break;
    default: f(LoadF32{reinterpret_cast<const float*>(w.data)}); break;
    }
}

}  // namespace

void matvec_rows(const WeightView& w, const float* x, float* y, int row_begin, int row_end)
{
    // The vector kernel set chosen for this CPU at run time (cpu/simd/).
    simd::matvec_rows(w, x, y, row_begin, row_end);
}

void matvec_transposed_cols(const WeightView& w, const float* x, float* y, int col_begin, int col_end)
{
    simd::matvec_transposed_cols(w, x, y, col_begin, col_end);
}

void embedding_row(const WeightView& table, int row, float* y)
{
    with_loader(table, [&](const auto& load) {
        const std::size_t base = static_cast<std::size_t>(row) * table.cols;
        for (int c = 0; c < table.cols; ++c) y[c] = load(base + c);
    });
}

}  // namespace moelens::cpu
