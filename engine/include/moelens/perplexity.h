#pragma once
// Perplexity of a model on a token sequence, scored the way tools/train-demo scores
// its validation text: the ids are cut into windows of `window - 1` tokens, each
// window is run on its own from an empty cache as [BOS] + window, and every window
// token is predicted from the tokens before it in that window. So no token is
// predicted with more context than the model saw in training, and a figure from
// here equals the training tool's for the same text and window.
#include <functional>
#include <span>

#include "moelens/model.h"

namespace moelens {

struct PerplexityResult {
    long long tokens = 0;   // predicted tokens (= the ids scored)
    int windows = 0;
    double mean_nll = 0.0;  // natural log
    double perplexity = 0.0;
};

// `progress(done, total)` is called after each window; return false to stop early
// (the result then covers the windows done so far).
PerplexityResult perplexity(std::shared_ptr<const Model> model, std::span<const int> ids, int bos, int window,
                            const std::function<bool(long long done, long long total)>& progress = {});

}  // namespace moelens
