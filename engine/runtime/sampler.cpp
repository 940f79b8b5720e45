// Sampling the next token from logits.
#include <algorithm>
#include <cmath>
#include <string>

#include "moelens/error.h"
#include "moelens/sampling.h"

namespace moelens {

int argmax(std::span<const float> logits)
{
    int best = 0;
    for (std::size_t i = 1; i < logits.size(); ++i)
        if (logits[i] > logits[best]) best = static_cast<int>(i);
    return best;
}

void check_sampling(const SamplingParams& p)
{
    const auto in = [](const char* name, float v, float lo, float hi, bool lo_open) {
        if (!std::isfinite(v) || v < lo || (lo_open && v == lo) || v > hi)
            throw Error(std::string(name) + " " + std::to_string(v) + " is outside " + (lo_open ? "(" : "[") +
                        std::to_string(lo) + ", " + std::to_string(hi) + "]");
    };
    in("temperature", p.temperature, 0.0f, 100.0f, false);
    in("top_p", p.top_p, 0.0f, 1.0f, false);
    in("min_p", p.min_p, 0.0f, 1.0f, false);
    in("repetition_penalty", p.repetition_penalty, 0.0f, 100.0f, true);
    if (p.max_new_tokens < 0) throw Error("max_new_tokens " + std::to_string(p.max_new_tokens) + " is negative");
}

Sampler::Sampler(SamplingParams params) : m_params(std::move(params)), m_rng(m_params.seed) {}

void Sampler::reseed(std::uint64_t seed) { m_rng.seed(seed); }

int Sampler::sample(std::span<const float> logits, std::span<const int> history)
{
    const int V = static_cast<int>(logits.size());
    const SamplingParams& p = m_params;

    // CTRL-style repetition penalty (Keskar et al. 2019): shrink the logit of every
    // token already present, dividing positive and multiplying negative ones.
    const bool penalise = p.repetition_penalty > 0.0f && p.repetition_penalty != 1.0f;
    if (penalise) {
        m_seen.resize(V);
        for (int t : history)
            if (t >= 0 && t < V) m_seen[t] = 1;
    }
    auto logit = [&](int i) {
        const float l = logits[i];
        if (!penalise || !m_seen[i]) return l;
        return l > 0 ? l / p.repetition_penalty : l * p.repetition_penalty;
    };
    // Higher logit first; equal logits by lower id, so results never depend on scan order.
    auto before = [](const std::pair<float, int>& a, const std::pair<float, int>& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
    };

    m_candidates.clear();
    if (p.temperature <= 0.0f || p.top_k == 1) {
        // Ascending ids with a strict comparison: the lowest id of equal logits,
        // as `before` orders them. A plain scan: this runs once per decoded token
        // over the whole vocabulary.
        int best = 0;
        float best_logit = logit(0);
        for (int i = 1; i < V; ++i) {
            const float l = logit(i);
            if (l > best_logit) {
                best_logit = l;
                best = i;
            }
        }
        m_candidates.push_back({best_logit, best});
    } else if (p.top_k > 0 && p.top_k < V) {
        // Top-k in one pass: a heap of the k best so far, its worst on top.
        for (int i = 0; i < V; ++i) {
            const std::pair<float, int> c{logit(i), i};
            if (static_cast<int>(m_candidates.size()) < p.top_k) {
                m_candidates.push_back(c);
                std::push_heap(m_candidates.begin(), m_candidates.end(), before);
            } else if (before(c, m_candidates.front())) {
                std::pop_heap(m_candidates.begin(), m_candidates.end(), before);
                m_candidates.back() = c;
                std::push_heap(m_candidates.begin(), m_candidates.end(), before);
            }
        }
    } else {
        for (int i = 0; i < V; ++i) m_candidates.push_back({logit(i), i});
    }
    if (penalise)
        for (int t : history)
            if (t >= 0 && t < V) m_seen[t] = 0;
    if (m_candidates.size() == 1) return m_candidates[0].second;
    std::sort(m_candidates.begin(), m_candidates.end(), before);
    int n = static_cast<int>(m_candidates.size());

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
