#include "model/rope_table.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace moelens {
namespace {

// YaRN's attention temperature: M(f, m) = 0.1 m ln f + 1, or 1 when f <= 1.
double yarn_mscale(double factor, double m) { return factor <= 1.0 ? 1.0 : 0.1 * m * std::log(factor) + 1.0; }

// The dimension whose wavelength makes `rotations` full turns over the original context.
double correction_dim(double rotations, int dr, double theta, int original_len)
{
    return dr * std::log(original_len / (rotations * 2.0 * std::numbers::pi)) / (2.0 * std::log(theta));
}

}  // namespace

RopeFrequencies rope_frequencies(const ModelConfig& c)
{
    const int dr = c.qk_rope_head_dim;
    RopeFrequencies f;
    f.inv_freq.resize(dr / 2);
    for (int i = 0; i < dr / 2; ++i) f.inv_freq[i] = static_cast<float>(std::pow(c.rope_theta, -2.0 * i / dr));
    double scale = 1.0 / std::sqrt(static_cast<double>(c.qk_nope_head_dim + dr));
    if (c.has_yarn) {
        const YarnScaling& y = c.yarn;
        // Dimensions rotating fast (more than beta_fast turns over the original
        // context) keep their frequency; slow ones (< beta_slow turns) are
        // interpolated by 1/factor; a linear ramp blends those between.
        const double low = std::max(std::floor(correction_dim(y.beta_fast, dr, c.rope_theta, y.original_max_position_embeddings)), 0.0);
        double high = std::min(std::ceil(correction_dim(y.beta_slow, dr, c.rope_theta, y.original_max_position_embeddings)),
                               static_cast<double>(dr - 1));
        if (low == high) high += 0.001;
        for (int i = 0; i < dr / 2; ++i) {
            const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
            const double keep = 1.0 - ramp;
            const double extra = std::pow(c.rope_theta, -2.0 * i / dr);
            f.inv_freq[i] = static_cast<float>(extra / y.factor * (1.0 - keep) + extra * keep);
        }
        f.cos_sin_scale = static_cast<float>(yarn_mscale(y.factor, y.mscale) / yarn_mscale(y.factor, y.mscale_all_dim));
        if (y.mscale_all_dim != 0.0) {
            const double m = yarn_mscale(y.factor, y.mscale_all_dim);
            scale *= m * m;
        }
    }
    f.softmax_scale = static_cast<float>(scale);
    return f;
}

void rope_cos_sin(const RopeFrequencies& f, int pos, float* cos, float* sin)
{
    for (std::size_t i = 0; i < f.inv_freq.size(); ++i) {
        // The reference forms the angle in f32 (outer(t, freqs)); so do we.
        const float angle = static_cast<float>(pos) * f.inv_freq[i];
        cos[i] = static_cast<float>(std::cos(static_cast<double>(angle))) * f.cos_sin_scale;
        sin[i] = static_cast<float>(std::sin(static_cast<double>(angle))) * f.cos_sin_scale;
    }
}

}  // namespace moelens
