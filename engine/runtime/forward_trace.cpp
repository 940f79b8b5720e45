#include "moelens/forward_trace.h"

#include <algorithm>
#include <numeric>
#include <string>

#include "moelens/error.h"

namespace moelens {

ForwardTrace run_forward_trace(std::shared_ptr<const Model> model, std::span<const int> tokens, int greedy,
                               AttentionPath path)
{
    if (tokens.empty()) throw Error("forward: no tokens");
    if (greedy < 0) throw Error("forward: negative greedy count " + std::to_string(greedy));
    const ModelConfig& c = model->config();
    SessionOptions opts;
    opts.attention = path;
    Session session(model, opts);
    if (tokens.size() + greedy > static_cast<std::size_t>(session.max_tokens()))
        throw Error("forward: " + std::to_string(tokens.size() + greedy) + " positions exceed max_position_embeddings " +
                    std::to_string(session.max_tokens()));

    ForwardTrace tr;
    tr.vocab = c.vocab_size;
    tr.top_k = c.num_experts_per_tok;
    tr.tokens.assign(tokens.begin(), tokens.end());
    const std::size_t k = tr.top_k;
    std::vector<std::size_t> order(k);
    auto record = [&](const TokenEvent& e) {
        for (const RoutingRecord& r : e.routing) {
            std::iota(order.begin(), order.end(), 0);
            std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return r.experts[a] < r.experts[b]; });
            auto& idx = tr.topk_idx[r.layer];
            auto& w = tr.topk_weight[r.layer];
            for (std::size_t j : order) {
                idx.push_back(r.experts[j]);
                w.push_back(r.weights[j]);
            }
        }
        return true;
    };
    for (int t : tokens) {
        auto logits = session.step(t, record, true);
        tr.logits.insert(tr.logits.end(), logits.begin(), logits.end());
    }
    int next = argmax(session.logits());
    for (int i = 0; i < greedy; ++i) {
        tr.greedy_tokens.push_back(next);
        auto logits = session.step(next);
        tr.greedy_logits.insert(tr.greedy_logits.end(), logits.begin(), logits.end());
        next = argmax(logits);
    }
    return tr;
}

std::vector<TensorToWrite> forward_trace_tensors(const ForwardTrace& tr)
{
    const std::int64_t T = static_cast<std::int64_t>(tr.tokens.size());
    const std::int64_t G = static_cast<std::int64_t>(tr.greedy_tokens.size());
    std::vector<TensorToWrite> out;
    out.push_back(make_i32_tensor("tokens", {T}, tr.tokens));
    out.push_back(make_f32_tensor("logits", {T, tr.vocab}, tr.logits));
    out.push_back(make_i32_tensor("greedy_tokens", {G}, tr.greedy_tokens));
    out.push_back(make_f32_tensor("greedy_logits", {G, tr.vocab}, tr.greedy_logits));
    for (const auto& [layer, idx] : tr.topk_idx)
        out.push_back(make_i32_tensor("topk_idx." + std::to_string(layer), {T, tr.top_k}, idx));
    for (const auto& [layer, w] : tr.topk_weight)
        out.push_back(make_f32_tensor("topk_weight." + std::to_string(layer), {T, tr.top_k}, w));
    return out;
}

}  // namespace moelens
