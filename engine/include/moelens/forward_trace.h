#pragma once
// A conformance run: the whole prompt's logits and routing plus a greedy
// continuation, in the layout of the golden files (tests/fixtures/golden/README.md).
// Used by `moelens-cli forward` and by the golden tests.
#include <map>
#include <span>
#include <vector>

#include "moelens/safetensors.h"
#include "moelens/session.h"

namespace moelens {

struct ForwardTrace {
    int vocab = 0;
    int top_k = 0;
    std::vector<int> tokens;           // [T]
    std::vector<float> logits;         // [T, vocab]
    std::vector<int> greedy_tokens;    // [G]
    std::vector<float> greedy_logits;  // [G, vocab]
    // Per MoE layer: [T, top_k], each row sorted by ascending expert id, weights permuted alike.
    std::map<int, std::vector<int>> topk_idx;
    std::map<int, std::vector<float>> topk_weight;
};

// Prefills `tokens` one at a time from position 0, then feeds G greedy tokens:
// greedy_tokens[0] = argmax(logits[T-1]), greedy_tokens[i+1] = argmax(greedy_logits[i]).
ForwardTrace run_forward_trace(std::shared_ptr<const Model> model, std::span<const int> tokens, int greedy,
                               AttentionPath path);

// The tensors of golden.safetensors: tokens, logits, greedy_tokens, greedy_logits,
// topk_idx.L, topk_weight.L.
std::vector<TensorToWrite> forward_trace_tensors(const ForwardTrace& trace);

}  // namespace moelens
