#pragma once
// Comparing an engine run with a golden.safetensors (tests/fixtures/golden/README.md
// layout): shared by the CPU goldens, the trained demo model and the GPU goldens.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace moelens::testing {

struct Diff {
    double max_abs = 0.0;  // infinity if either side holds a NaN
    std::size_t at = 0;    // index of the worst element
};

inline Diff max_abs_diff(const std::vector<float>& a, const std::vector<float>& b)
{
    Diff d;
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
        const double x = std::abs(double(a[i]) - double(b[i]));
        if (std::isnan(x)) return {INFINITY, i};
        if (x > d.max_abs) d = {x, i};
    }
    return d;
}

inline int row_argmax(const std::vector<float>& m, std::size_t row, std::size_t cols)
{
    const auto first = m.begin() + static_cast<std::ptrdiff_t>(row * cols);
    return static_cast<int>(std::max_element(first, first + static_cast<std::ptrdiff_t>(cols)) - first);
}

inline std::vector<int> as_int(const std::vector<std::int64_t>& v) { return {v.begin(), v.end()}; }

}  // namespace moelens::testing
