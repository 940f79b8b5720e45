// Sampling the next token from logits.
#include <algorithm>
#include <cmath>

#include "moelens/sampling.h"

namespace moelens {

int argmax(std::span<const float> logits)
{
    int best = 0;
    for (std::size_t i = 1; i < logits.size(); ++i)
        if (logits[i] > logits[best]) best = static_cast<int>(i);
    return best;
}

Sampler::Sampler(SamplingParams params) : m_params(std::move(params)), m_rng(m_params.seed) {}

void Sampler::reseed(std::uint64_t seed) { m_rng.seed(seed); }

int Sampler::sample(std::span<const float> logits, std::span<const int> history)
{
    const int V = static_cast<int>(logits.size());
    const SamplingParams& p = m_params;
    m_candidates.resize(V);
    for (int i = 0; i < V; ++i) m_candidates[i] = {logits[i], i};

    // CTRL-style repetition penalty (Keskar et al. 2019): shrink the logit of every
    // token already present, dividing positive and multiplying negative ones.
    if (p.repetition_penalty > 0.0f && p.repetition_penalty != 1.0f) {
        m_seen.assign(V, 0);
        for (int t : history)
            if (t >= 0 && t < V) m_seen[t] = 1;
        for (int i = 0; i < V; ++i)
            if (m_seen[i]) {
                float& l = m_candidates[i].first;
                l = l > 0 ? l / p.repetition_penalty : l * p.repetition_penalty;
            }
    }
    auto by_logit = [](const std::pair<float, int>& a, const std::pair<float, int>& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
    };
    if (p.temperature <= 0.0f || p.top_k == 1)
        return std::min_element(m_candidates.begin(), m_candidates.end(), by_logit)->second;

    // Top-k: keep the k largest (partial sort keeps the cost near O(V)).
    int n = V;
    if (p.top_k > 0 && p.top_k < V) {
        std::nth_element(m_candidates.begin(), m_candidates.begin() + p.top_k, m_candidates.end(), by_logit);
        n = p.top_k;
    }
    std::sort(m_candidates.begin(), m_candidates.begin() + n, by_logit);

    // Softmax with temperature over the survivors (in descending order).
    const float max_logit = m_candidates[0].first;
    double sum = 0.0;
    for (int i = 0; i < n; ++i) {
        const float e = std::exp((m_candidates[i].first - max_logit) / p.temperature);
        m_candidates[i].first = e;
        sum += e;
    }
    for (int i = 0; i < n; ++i) m_candidates[i].first = static_cast<float>(m_candidates[i].first / sum);

    // min-p: drop tokens below min_p x the most likely one's probability.
    if (p.min_p > 0.0f) {
        const float floor_p = p.min_p * m_candidates[0].first;
        int keep = 1;
        while (keep < n && m_candidates[keep].first >= floor_p) ++keep;
        n = keep;
    }
    // top-p (nucleus): the smallest prefix whose mass reaches top_p.
    if (p.top_p < 1.0f) {
        double cum = 0.0;
        int keep = 0;
        while (keep < n) {
            cum += m_candidates[keep].first;
            ++keep;
            if (cum >= p.top_p) break;
        }
        n = keep;
    }
    double mass = 0.0;
    for (int i = 0; i < n; ++i) mass += m_candidates[i].first;
    // A uniform draw from our own engine: std::uniform_real_distribution's
    // algorithm is not pinned down by the standard, so seeds would not carry across
    // standard libraries.
    const double u = static_cast<double>(m_rng() >> 11) * (1.0 / 9007199254740992.0) * mass;
    double cum = 0.0;
    for (int i = 0; i < n; ++i) {
        cum += m_candidates[i].first;
        if (u < cum) return m_candidates[i].second;
    }
    return m_candidates[n - 1].second;
}

}  // namespace moelens
