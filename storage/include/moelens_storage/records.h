#pragma once
// Plain record types of the store. They know nothing of the engine or of Qt: the UI
// converts engine events into these (a routing trace is expert ids + gate weights per
// token and MoE layer, not an engine TokenEvent). Times are milliseconds since the
// Unix epoch (UTC). Ids are SQLite rowids; 0 never names a row.
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace moelens::storage {

using ChatId = std::int64_t;
using MessageId = std::int64_t;
using RunId = std::int64_t;
using ComparisonId = std::int64_t;

enum class Role { System, User, Assistant };
const char* to_string(Role role);
std::optional<Role> role_from_string(const std::string& text);

// Lifecycle of a message's text. User and system messages are Complete at once; an
// assistant reply is Streaming while tokens arrive, then Complete, Stopped (the user
// pressed Stop) or Failed. A reply found Streaming when the store opens was cut off by
// a crash or kill and becomes Interrupted; its saved text is a prefix of the reply.
enum class MessageState { Streaming, Complete, Stopped, Failed, Interrupted };
const char* to_string(MessageState state);
std::optional<MessageState> message_state_from_string(const std::string& text);

struct NewChat {
    std::string title;
    std::string model;  // display name or path of the model chosen for the chat
    std::string system_prompt;
};

struct Chat {
    ChatId id = 0;
    std::string title;
    std::string model;
    std::string system_prompt;
    bool pinned = false;
    bool archived = false;
    std::int64_t created_ms = 0;
    std::int64_t updated_ms = 0;            // last change to the chat or any of its messages
    std::optional<MessageId> current_leaf;  // last message of the branch on screen
    std::int64_t message_count = 0;         // all branches
};

struct Message {
    MessageId id = 0;
    ChatId chat_id = 0;
    std::optional<MessageId> parent_id;  // none for the first message of a branch tree
    Role role = Role::User;
    std::string content;
    MessageState state = MessageState::Complete;
    std::int64_t created_ms = 0;
    // Position among messages sharing this parent, for the `< 2/3 >` control; filled by
    // load_current_path and get_message (1-based index).
    int sibling_index = 1;
    int sibling_count = 1;
};

// One generation: what produced an assistant message and how fast.
struct RunRecord {
    std::string model_path;
    std::string model_fingerprint;  // e.g. a hash of config + tensor headers
    std::string sampling_json;      // the full sampling settings as a JSON object
    std::int64_t tokens_in = 0;     // prompt tokens
    std::int64_t tokens_out = 0;    // generated tokens
    double prefill_tokens_per_s = 0;
    double decode_tokens_per_s = 0;
    std::string stop_reason;  // "eos", "max_tokens", "stop", "cancelled", "error", ...
    std::string error;        // empty when the run succeeded
    std::int64_t started_ms = 0;
    std::int64_t finished_ms = 0;
    // With experts spread over devices: the placement and what the exchange moved,
    // as a JSON object (the UI's encoding, ui/trace/device_traffic.h). Empty when
    // the run used one device.
    std::string devices_json;
};

struct Run {
    RunId id = 0;
    MessageId message_id = 0;
    RunRecord record;
    bool has_trace = false;
};

// Expert routing of every traced token of a run, flat and row-major so a 1,000-token
// trace is a handful of allocations. A row is one token at one MoE layer.
struct RoutingTrace {
    std::uint16_t n_experts = 0;            // routed experts per MoE layer; ids are < n_experts
    std::uint8_t top_k = 0;                 // experts chosen per token per layer
    std::uint8_t groups_per_row = 0;        // selected expert groups per row, 0 if not recorded
    std::uint32_t n_prompt_tokens = 0;      // the first rows belong to the prompt (prefill)
    std::vector<std::uint16_t> layers;      // model layer index of each traced MoE layer
    std::vector<std::int32_t> token_ids;    // [n_tokens]
    std::vector<std::string> token_texts;   // [n_tokens] or empty: decoded pieces, so a
                                            // replay needs no tokenizer
    std::vector<std::uint16_t> expert_ids;  // [n_tokens][layers][top_k]
    std::vector<float> gate_weights;        // [n_tokens][layers][top_k]
    std::vector<std::uint8_t> group_ids;    // [n_tokens][layers][groups_per_row]

    std::size_t n_tokens() const { return token_ids.size(); }
    std::size_t row_stride() const { return layers.size() * top_k; }
    // Appends one token's routing: `experts`/`weights` are [layers][top_k], `groups`
    // is [layers][groups_per_row] (may be empty when groups_per_row is 0).
    void append_token(std::int32_t token_id, const std::string& text, const std::vector<std::uint16_t>& experts,
                      const std::vector<float>& weights, const std::vector<std::uint8_t>& groups = {});
    // Throws StorageError(TraceFormat) naming the inconsistent field.
    void validate() const;
};

// One column of a comparison: a settings set and, once it ran, its result.
struct ComparisonColumn {
    std::string label;          // e.g. "A"; shown as the column's title
    std::string sampling_json;  // a JSON object (as a run record's)
    std::string moe_json;       // a JSON object: the engine's MoE settings, {} = the model's own
};

struct ComparisonResult {
    std::string text;
    std::string stop_reason;  // as RunRecord::stop_reason
    std::string error;        // empty when the column ran
    std::int64_t tokens_in = 0;
    std::int64_t tokens_out = 0;
    double decode_tokens_per_s = 0;
    std::int64_t finished_ms = 0;
};

struct NewComparison {
    std::optional<ChatId> chat;  // none: a new prompt, outside any chat
    std::string title;
    std::string context_json;    // the conversation run (a JSON array of {role, content})
    std::string model_path;
    std::vector<ComparisonColumn> columns;
};

struct StoredColumn {
    ComparisonColumn settings;
    std::optional<ComparisonResult> result;  // none until the column's result is saved
    std::optional<RoutingTrace> trace;
};

struct Comparison {
    ComparisonId id = 0;
    std::optional<ChatId> chat;
    std::string title;
    std::string context_json;
    std::string model_path;
    std::int64_t created_ms = 0;
    std::vector<StoredColumn> columns;  // by position
};

// A line of the list of stored comparisons.
struct ComparisonSummary {
    ComparisonId id = 0;
    std::optional<ChatId> chat;
    std::string title;
    std::int64_t created_ms = 0;
    int columns = 0;
    int finished_columns = 0;
};

struct Preset {
    std::string name;
    std::string sampling_json;  // a JSON object
    std::int64_t created_ms = 0;
    std::int64_t updated_ms = 0;
};

// A typed setting value; JSON values are stored as JSON text.
struct JsonText {
    std::string text;
    bool operator==(const JsonText&) const = default;
};
using SettingValue = std::variant<bool, std::int64_t, double, std::string, JsonText>;

struct SearchHit {
    ChatId chat_id = 0;
    MessageId message_id = 0;
    std::string chat_title;
    Role role = Role::User;
    // Matched text around the hit; matches are wrapped in kSearchMatchOpen/Close
    // (U+0002/U+0003), which never occur in chat text, so the UI can escape the text
    // and then turn the markers into highlighting.
    std::string snippet;
    std::int64_t created_ms = 0;
};

inline constexpr const char* kSearchMatchOpen = "\x02";
inline constexpr const char* kSearchMatchClose = "\x03";

}  // namespace moelens::storage
