#pragma once
// Sessions of a model that lives on a GPU run their steps here instead of in
// runtime/forward.cpp and runtime/prefill.cpp, with the same contracts (the
// hooks at the top of those functions call these).
#include <span>

#include "moelens/session.h"
#include "runtime/session_state.h"

namespace moelens {

// As forward_step(): one token at the next position, logits in s.logits, the
// routing of every MoE layer in *event when given. Absorbed attention only.
void device_forward_step(const ModelImpl& m, SessionState& s, int token, TokenEvent* event);

// As forward_prefill(): all tokens in as few device calls as the step size
// allows; events per token until the sink returns false. Returns events delivered.
int device_forward_prefill(const ModelImpl& m, SessionState& s, std::span<const int> tokens, const EventSink& on_event);

}  // namespace moelens
