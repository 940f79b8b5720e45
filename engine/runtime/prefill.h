#pragma once
#include <span>

#include "moelens/session.h"
#include "runtime/session_state.h"

namespace moelens {

// Feeds `tokens` at positions s.tokens.size() onwards, layer by layer for all of
// them at once, so each matrix is read once for the whole batch (Backend::matmul)
// and each routed expert once for the tokens routed to it: prefill becomes
// compute-bound instead of memory-bound. Attention stays causal: token t attends
// over the cache up to its own position. Same results as forward_step() per
// token up to f32 summation order. Absorbed attention only.
// Leaves the last token's logits in s.logits; when `on_event` is given, calls it
// for every token in order with its routing and cache statistics (is_prompt)
// until it returns false. Returns how many events it delivered (n without a sink).
int forward_prefill(const ModelImpl& m, SessionState& s, std::span<const int> tokens, const EventSink& on_event);

// Tokens per forward_prefill call made by Session::prefill (memory for the
// batch's activations grows with it; cancellation is checked between batches).
constexpr int kPrefillBatch = 256;

}  // namespace moelens
