// DeepSeekMoE top-k selection over the softmax gate scores.
#include "cpu/kernels.h"

namespace moelens::cpu {
namespace {

// Index of the largest value among those with allowed[i] (ties -> lowest index).
template <class Allowed>
int argmax_where(const float* v, int n, const Allowed& allowed)
{
    int best = -1;
    for (int i = 0; i < n; ++i)
        if (allowed(i) && (best < 0 || v[i] > v[best])) best = i;
    return best;
}

}  // namespace

// greedy: the top_k largest scores. group_limited_greedy (device-limited routing,
// DeepSeek-V2 section 2.2.2): experts form n_group contiguous groups, a group
// scores its best expert, the topk_group best groups stay, then top_k inside them.
// k is small (<= 8 in every released model), so k passes of a max scan beat a sort.
// A disabled expert (what-if settings, moelens/moe_settings.h) is masked before
// all of this: it neither scores its group nor is chosen.
void moe_route(const float* probs, const RouteParams& p, const std::uint8_t* disabled, int* ids, float* weights,
               float* scratch)
{
    const int E = p.n_experts;
    // scratch[0, E): 1 if the expert may still be chosen; scratch[E, E + n_group): group state.
    float* allowed = scratch;
    for (int e = 0; e < E; ++e) allowed[e] = disabled && disabled[e] ? 0.0f : 1.0f;
    if (p.group_limited && p.n_group > 1) {
        const int per = E / p.n_group;
        float* group_score = scratch + E;
        for (int g = 0; g < p.n_group; ++g) {
            float m = -1.0f;  // probabilities are >= 0: -1 marks "nothing to choose here"
            for (int e = g * per; e < (g + 1) * per; ++e)
                if (allowed[e] != 0.0f && probs[e] > m) m = probs[e];
            group_score[g] = m;
        }
        for (int e = 0; e < E; ++e)
            if (allowed[e] != 0.0f) allowed[e] = 0.5f;  // enabled, its group not kept (yet)
        for (int j = 0; j < p.topk_group; ++j) {
            const int g = argmax_where(group_score, p.n_group, [&](int i) { return group_score[i] >= 0.0f; });
            if (g < 0) break;
            for (int e = g * per; e < (g + 1) * per; ++e)
                if (allowed[e] != 0.0f) allowed[e] = 1.0f;
            group_score[g] = -1.0f;  // taken
        }
        for (int e = 0; e < E; ++e)
            if (allowed[e] != 1.0f) allowed[e] = 0.0f;
    }
    float sum = 0.0f;
    for (int j = 0; j < p.top_k; ++j) {
        const int e = argmax_where(probs, E, [&](int i) { return allowed[i] != 0.0f; });
        ids[j] = e;
        weights[j] = probs[e];
        allowed[e] = 0.0f;
        sum += probs[e];
    }
    if (p.norm_topk_prob && p.top_k > 1) {
        for (int j = 0; j < p.top_k; ++j) weights[j] /= sum + 1e-20f;
    } else {
        for (int j = 0; j < p.top_k; ++j) weights[j] *= p.routed_scaling_factor;
    }
}

}  // namespace moelens::cpu
