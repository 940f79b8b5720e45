#pragma once
#include "moelens/session.h"
#include "runtime/session_state.h"

namespace moelens {

// One decoder forward step: feeds `token` at position s.tokens.size(), appends its
// latents to the cache, leaves the logits in s.logits and, if `event` is given,
// the routing of every MoE layer in event->routing.
void forward_step(const ModelImpl& m, SessionState& s, int token, AttentionPath path, TokenEvent* event);

}  // namespace moelens
