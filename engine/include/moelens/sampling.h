#pragma once
// Turning logits into the next token: greedy, temperature, top-k, top-p, min-p,
// repetition penalty, seeded (same seed and inputs = same tokens).
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace moelens {

struct SamplingParams {
    float temperature = 0.8f;        // <= 0: greedy (argmax)
    int top_k = 40;                  // <= 0: off
    float top_p = 0.95f;             // >= 1: off
    float min_p = 0.0f;              // <= 0: off; keeps tokens with p >= min_p x p_max
    float repetition_penalty = 1.0f; // 1: off; CTRL-style on every token already in the sequence
    std::uint64_t seed = 0;
    int max_new_tokens = 256;
    bool stop_at_eos = true;                 // stop on the config's eos ids
    std::vector<int> stop_token_ids;         // extra stop ids
    std::vector<std::string> stop_strings;   // checked on decoded text (needs Session::GenerateHooks::token_text)

    static SamplingParams greedy()
    {
        SamplingParams p;
        p.temperature = 0.0f;
        return p;
    }
};

// Throws Error naming the value and its limit for settings that are not numbers
// (NaN, infinity) or out of range: temperature 0..100, top_p and min_p 0..1,
// repetition_penalty above 0 and at most 100, max_new_tokens not negative.
// The scheduler checks every request with it (and so Session and every caller).
void check_sampling(const SamplingParams& p);

// Holds its random state and its scratch (sized on first use to the vocabulary),
// so sampling allocates nothing per token.
class Sampler {
public:
    explicit Sampler(SamplingParams params = {});

    // `history` = tokens already in the sequence (for the repetition penalty).
    int sample(std::span<const float> logits, std::span<const int> history);
    void reseed(std::uint64_t seed);
    const SamplingParams& params() const { return m_params; }

private:
    SamplingParams m_params;
    std::mt19937_64 m_rng;
    std::vector<std::pair<float, int>> m_candidates;  // (logit or prob, token id)
    std::vector<std::uint8_t> m_seen;                 // per token id, for the penalty
};

int argmax(std::span<const float> logits);

}  // namespace moelens
