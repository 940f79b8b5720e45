#include "cpu/ref/ref_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>

namespace moelens::ref {

float weight_at(const WeightView& w, int r, int c)
{
    const std::size_t i = static_cast<std::size_t>(r) * w.cols + c;
    if (w.dtype == DType::F32) {
        float f;
        std::memcpy(&f, w.data + 4 * i, 4);
        return f;
    }
    std::uint16_t h;
    std::memcpy(&h, w.data + 2 * i, 2);
    return w.dtype == DType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
}

void matvec(const WeightView& w, const float* x, float* y)
{
    for (int r = 0; r < w.rows; ++r) {
        double s = 0.0;
        for (int c = 0; c < w.cols; ++c) s += double(weight_at(w, r, c)) * x[c];
        y[r] = static_cast<float>(s);
    }
}

void matvec_transposed(const WeightView& w, const float* x, float* y)
{
    for (int c = 0; c < w.cols; ++c) {
        double s = 0.0;
        for (int r = 0; r < w.rows; ++r) s += double(weight_at(w, r, c)) * x[r];
        y[c] = static_cast<float>(s);
    }
}

void rmsnorm(const float* x, const float* weight, int n, float eps, float* y)
{
    double ss = 0.0;
    for (int i = 0; i < n; ++i) ss += double(x[i]) * x[i];
    const double inv = 1.0 / std::sqrt(ss / n + eps);
    for (int i = 0; i < n; ++i) y[i] = static_cast<float>(weight[i] * (x[i] * inv));
}

void rope(float* x, int n_vectors, int stride, int dr, const float* cos, const float* sin)
{
    for (int v = 0; v < n_vectors; ++v)
        for (int i = 0; i < dr / 2; ++i) {
            float* p = x + v * stride + 2 * i;
            const double a = p[0], b = p[1];
            p[0] = static_cast<float>(a * cos[i] - b * sin[i]);
            p[1] = static_cast<float>(a * sin[i] + b * cos[i]);
        }
}

void softmax(float* x, int n)
{
    const double m = *std::max_element(x, x + n);
    double sum = 0.0;
    for (int i = 0; i < n; ++i) sum += std::exp(x[i] - m);
    for (int i = 0; i < n; ++i) x[i] = static_cast<float>(std::exp(x[i] - m) / sum);
}

void silu_mul(float* gate, const float* up, int n)
{
    for (int i = 0; i < n; ++i) gate[i] = static_cast<float>(gate[i] / (1.0 + std::exp(-double(gate[i]))) * up[i]);
}

void moe_route(const float* probs, const RouteParams& p, int* ids, float* weights, const std::uint8_t* disabled)
{
    // A disabled expert scores below every other (-1 < 0, the group mask's value).
    std::vector<float> masked(probs, probs + p.n_experts);
    if (disabled)
        for (int e = 0; e < p.n_experts; ++e)
            if (disabled[e]) masked[e] = -1.0f;
    if (p.group_limited && p.n_group > 1) {
        const int per = p.n_experts / p.n_group;
        std::vector<std::pair<float, int>> groups;
        for (int g = 0; g < p.n_group; ++g)
            groups.push_back({*std::max_element(masked.begin() + g * per, masked.begin() + (g + 1) * per), g});
        std::stable_sort(groups.begin(), groups.end(), [](auto& a, auto& b) { return a.first > b.first; });
        std::vector<bool> keep(p.n_group, false);
        for (int j = 0; j < p.topk_group; ++j) keep[groups[j].second] = true;
        for (int e = 0; e < p.n_experts; ++e)
            if (!keep[e / per] && masked[e] >= 0.0f) masked[e] = 0.0f;  // the reference's masked_fill(~mask, 0.0)
    }
    std::vector<int> order(p.n_experts);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return masked[a] > masked[b]; });
    double sum = 0.0;
    for (int j = 0; j < p.top_k; ++j) sum += probs[order[j]];
    for (int j = 0; j < p.top_k; ++j) {
        ids[j] = order[j];
        weights[j] = (p.norm_topk_prob && p.top_k > 1) ? static_cast<float>(probs[order[j]] / (sum + 1e-20))
                                                       : probs[order[j]] * p.routed_scaling_factor;
    }
}

void attention_mla_absorbed(const float* q_lat, const float* q_pe, const LatentCacheView& cache, const MlaDims& d,
                            float* out_lat)
{
    std::vector<float> sc(cache.n_ctx);
    for (int h = 0; h < d.n_heads; ++h) {
        for (int s = 0; s < cache.n_ctx; ++s) {
            const float* row = cache.row(s);
            double dot = 0.0;
            for (int c = 0; c < d.kv_lora; ++c) dot += double(q_lat[h * d.kv_lora + c]) * row[c];
            for (int c = 0; c < d.dr; ++c) dot += double(q_pe[h * d.dr + c]) * row[d.kv_lora + c];
            sc[s] = static_cast<float>(d.softmax_scale * dot);
        }
        softmax(sc.data(), cache.n_ctx);
        for (int c = 0; c < d.kv_lora; ++c) {
            double o = 0.0;
            for (int s = 0; s < cache.n_ctx; ++s) o += double(sc[s]) * cache.row(s)[c];
            out_lat[h * d.kv_lora + c] = static_cast<float>(o);
        }
    }
}

void attention_mla_naive(const float* q, const float* kv, const LatentCacheView& cache, const MlaDims& d, float* out)
{
    const int kv_stride = d.n_heads * (d.dn + d.dv);
    std::vector<float> sc(cache.n_ctx);
    for (int h = 0; h < d.n_heads; ++h) {
        const float* qh = q + h * (d.dn + d.dr);
        for (int s = 0; s < cache.n_ctx; ++s) {
            const float* k = kv + s * kv_stride + h * (d.dn + d.dv);
            const float* k_pe = cache.row(s) + d.kv_lora;
            double dot = 0.0;
            for (int c = 0; c < d.dn; ++c) dot += double(qh[c]) * k[c];
            for (int c = 0; c < d.dr; ++c) dot += double(qh[d.dn + c]) * k_pe[c];
            sc[s] = static_cast<float>(d.softmax_scale * dot);
        }
        softmax(sc.data(), cache.n_ctx);
        for (int c = 0; c < d.dv; ++c) {
            double o = 0.0;
            for (int s = 0; s < cache.n_ctx; ++s) o += double(sc[s]) * kv[s * kv_stride + h * (d.dn + d.dv) + d.dn + c];
            out[h * d.dv + c] = static_cast<float>(o);
        }
    }
}

}  // namespace moelens::ref
