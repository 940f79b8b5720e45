#include "moelens/perplexity.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "moelens/error.h"
#include "moelens/session.h"

namespace moelens {
namespace {

// -log softmax(logits)[target], with the max subtracted and the sum in double so
// a 100k-token mean is not limited by float rounding.
double negative_log_likelihood(std::span<const float> logits, int target)
{
    const float peak = *std::max_element(logits.begin(), logits.end());
    double sum = 0.0;
    for (float v : logits) sum += std::exp(double(v) - double(peak));
    return std::log(sum) - (double(logits[static_cast<std::size_t>(target)]) - double(peak));
}

}  // namespace

PerplexityResult perplexity(std::shared_ptr<const Model> model, std::span<const int> ids, int bos, int window,
                            const std::function<bool(long long, long long)>& progress)
{
    if (!model) throw Error("perplexity: no model");
    const ModelConfig& c = model->config();
    if (window < 2 || window > c.max_position_embeddings)
        throw Error("perplexity: window " + std::to_string(window) + " must be between 2 and max_position_embeddings (" +
                    std::to_string(c.max_position_embeddings) + ")");
    if (bos < 0 || bos >= c.vocab_size)
        throw Error("perplexity: BOS id " + std::to_string(bos) + " is outside the vocabulary (" +
                    std::to_string(c.vocab_size) + ")");
    for (int id : ids)
        if (id < 0 || id >= c.vocab_size)
            throw Error("perplexity: token id " + std::to_string(id) + " is outside the vocabulary (" +
                        std::to_string(c.vocab_size) + ")");

    const long long total = static_cast<long long>(ids.size());
    const std::size_t chunk = static_cast<std::size_t>(window - 1);
    Session session(model, SessionOptions{AttentionPath::absorbed, window});
    PerplexityResult r;
    double nll_sum = 0.0;
    for (std::size_t begin = 0; begin < ids.size(); begin += chunk) {
        const std::size_t end = std::min(ids.size(), begin + chunk);
        session.reset();
        std::span<const float> logits = session.step(bos);
        for (std::size_t i = begin; i < end; ++i) {
            nll_sum += negative_log_likelihood(logits, ids[i]);
            ++r.tokens;
            if (i + 1 < end) logits = session.step(ids[i]);
        }
        ++r.windows;
        if (progress && !progress(static_cast<long long>(end), total)) break;
    }
    r.mean_nll = r.tokens > 0 ? nll_sum / double(r.tokens) : 0.0;
    r.perplexity = std::exp(r.mean_nll);
    return r;
}

}  // namespace moelens
