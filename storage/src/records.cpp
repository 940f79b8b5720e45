#include "moelens_storage/records.h"

#include <cmath>
#include <string>

#include "moelens_storage/error.h"

namespace moelens::storage {

const char* to_string(Role role)
{
    switch (role) {
        case Role::System:
            return "system";
        case Role::User:
            return "user";
        case Role::Assistant:
            return "assistant";
    }
    return "user";
}

std::optional<Role> role_from_string(const std::string& text)
{
    if (text == "system") return Role::System;
    if (text == "user") return Role::User;
    if (text == "assistant") return Role::Assistant;
    return std::nullopt;
}

const char* to_string(MessageState state)
{
    switch (state) {
        case MessageState::Streaming:
            return "streaming";
        case MessageState::Complete:
            return "complete";
        case MessageState::Stopped:
            return "stopped";
        case MessageState::Failed:
            return "failed";
        case MessageState::Interrupted:
            return "interrupted";
    }
    return "complete";
}

std::optional<MessageState> message_state_from_string(const std::string& text)
{
    if (text == "streaming") return MessageState::Streaming;
    if (text == "complete") return MessageState::Complete;
    if (text == "stopped") return MessageState::Stopped;
    if (text == "failed") return MessageState::Failed;
    if (text == "interrupted") return MessageState::Interrupted;
    return std::nullopt;
}

void RoutingTrace::append_token(std::int32_t token_id, const std::string& text,
                                const std::vector<std::uint16_t>& experts, const std::vector<float>& weights,
                                const std::vector<std::uint8_t>& groups)
{
    const std::size_t stride = row_stride();
    const std::size_t group_stride = layers.size() * groups_per_row;
    if (experts.size() != stride || weights.size() != stride || groups.size() != group_stride)
        throw StorageError(ErrorKind::TraceFormat,
                           "trace token " + std::to_string(token_ids.size()) + ": expected " + std::to_string(stride) +
                               " expert ids and weights and " + std::to_string(group_stride) + " group ids, found " +
                               std::to_string(experts.size()) + ", " + std::to_string(weights.size()) + " and " +
                               std::to_string(groups.size()));
    token_ids.push_back(token_id);
    token_texts.push_back(text);
    expert_ids.insert(expert_ids.end(), experts.begin(), experts.end());
    gate_weights.insert(gate_weights.end(), weights.begin(), weights.end());
    group_ids.insert(group_ids.end(), groups.begin(), groups.end());
}

void RoutingTrace::validate() const
{
    auto fail = [](const std::string& what) { throw StorageError(ErrorKind::TraceFormat, "routing trace: " + what); };
    if (n_experts == 0) fail("n_experts is 0");
    if (top_k == 0 || top_k > n_experts)
        fail("top_k " + std::to_string(top_k) + " must be in 1.." + std::to_string(n_experts));
    if (layers.empty()) fail("no MoE layers");
    const std::size_t n = n_tokens();
    if (n_prompt_tokens > n)
        fail("n_prompt_tokens " + std::to_string(n_prompt_tokens) + " exceeds the " + std::to_string(n) + " tokens");
    if (!token_texts.empty() && token_texts.size() != n)
        fail("token_texts has " + std::to_string(token_texts.size()) + " entries, expected 0 or " + std::to_string(n));
    const std::size_t rows = n * row_stride();
    if (expert_ids.size() != rows)
        fail("expert_ids has " + std::to_string(expert_ids.size()) + " entries, expected " + std::to_string(rows));
    if (gate_weights.size() != rows)
        fail("gate_weights has " + std::to_string(gate_weights.size()) + " entries, expected " + std::to_string(rows));
    const std::size_t group_rows = n * layers.size() * groups_per_row;
    if (group_ids.size() != group_rows)
        fail("group_ids has " + std::to_string(group_ids.size()) + " entries, expected " + std::to_string(group_rows));
    for (std::size_t i = 0; i < rows; ++i) {
        if (expert_ids[i] >= n_experts)
            fail("expert id " + std::to_string(expert_ids[i]) + " at entry " + std::to_string(i) +
                 " is not below n_experts " + std::to_string(n_experts));
        // binary16 holds at most 65504; anything larger or not finite is a caller bug.
        if (!std::isfinite(gate_weights[i]) || std::fabs(gate_weights[i]) > 65504.0f)
            fail("gate weight at entry " + std::to_string(i) + " is not a finite value within +-65504");
    }
}

}  // namespace moelens::storage
