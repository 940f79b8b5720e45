// MLA attention for one query token over one layer's latent cache.
#include <algorithm>
#include <cmath>

#include "cpu/kernels.h"
#include "cpu/simd/kernels.h"

namespace moelens::cpu {
namespace {

float dot(const float* a, const float* b, int n)
{
    float acc[4] = {};
    int i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; ++k) acc[k] += a[i + k] * b[i + k];
    float s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}

}  // namespace

// Absorbed form (DeepSeek-V2 eq. 9-11 with W_UK folded into q and W_UV applied by
// the caller after this): for head h the score against position s is
// scale * (q_lat_h . c_s + q_pe_h . k_pe_s), and the output stays in latent space:
// out_lat_h = sum_s p_s c_s. Per-head keys and values are never formed. One pass
// over the cache with an online softmax, in the vector kernel set of this CPU
// (cpu/simd/); each cache row is read once for all heads.
void attention_mla_partial(const float* q_lat, const float* q_pe, const LatentCacheView& cache, const MlaDims& d,
                           int pos_begin, int pos_end, float* m, float* l, float* o)
{
    simd::active_kernels().attention_partial(q_lat, q_pe, cache, pos_begin, pos_end, d.kv_lora, d.dr,
                                             d.softmax_scale, m, l, o, 0, d.n_heads);
}

// Each partial is rescaled from its own maximum to the common one: with
// w_p = e^(m_p - M), out = sum_p w_p o_p / sum_p w_p l_p.
void attention_mla_merge(const float* m, const float* l, const float* o, int parts, const MlaDims& d, float* out_lat,
                         int head_begin, int head_end)
{
    const int H = d.n_heads, dc = d.kv_lora;
    for (int h = head_begin; h < head_end; ++h) {
        float mx = m[h];
        for (int p = 1; p < parts; ++p) mx = std::max(mx, m[static_cast<std::size_t>(p) * H + h]);
        float denom = 0.0f;
        for (int p = 0; p < parts; ++p) {
            const std::size_t at = static_cast<std::size_t>(p) * H + h;
            if (l[at] > 0.0f) denom += std::exp(m[at] - mx) * l[at];
        }
        float* out = out_lat + static_cast<std::size_t>(h) * dc;
        for (int c = 0; c < dc; ++c) out[c] = 0.0f;
        for (int p = 0; p < parts; ++p) {
            const std::size_t at = static_cast<std::size_t>(p) * H + h;
            if (l[at] > 0.0f) axpy(out, std::exp(m[at] - mx) / denom, o + at * dc, dc);
        }
    }
}

// Naive form: keys k_h,s = [k_nope_h,s ; k_pe_s] and values v_h,s come from the
// decompressed kv rows (kv_b_proj applied to each cached c_kv by the caller).
void attention_mla_naive(const float* q, const float* kv, const LatentCacheView& cache, const MlaDims& d, float* scores,
                         float* out, int head_begin, int head_end)
{
    const int q_stride = d.dn + d.dr;
    const std::size_t kv_stride = static_cast<std::size_t>(d.n_heads) * (d.dn + d.dv);
    for (int h = head_begin; h < head_end; ++h) {
        const float* qh = q + static_cast<std::size_t>(h) * q_stride;
        float* sc = scores + static_cast<std::size_t>(h) * cache.n_ctx;
        for (int s = 0; s < cache.n_ctx; ++s) {
            const float* k_nope = kv + s * kv_stride + static_cast<std::size_t>(h) * (d.dn + d.dv);
            const float* k_pe = cache.row(s) + d.kv_lora;
            sc[s] = d.softmax_scale * (dot(qh, k_nope, d.dn) + dot(qh + d.dn, k_pe, d.dr));
        }
        softmax(sc, cache.n_ctx);
        float* o = out + static_cast<std::size_t>(h) * d.dv;
        for (int c = 0; c < d.dv; ++c) o[c] = 0.0f;
        for (int s = 0; s < cache.n_ctx; ++s)
            axpy(o, sc[s], kv + s * kv_stride + static_cast<std::size_t>(h) * (d.dn + d.dv) + d.dn, d.dv);
    }
}

}  // namespace moelens::cpu
