#pragma once
// Row-level inserts shared by the Store methods and JSON import (which must keep the
// original times and states). Callers hold the transaction.
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "moelens_storage/records.h"
#include "moelens_storage/sqlite.h"

namespace moelens::storage {

MessageId insert_message_row(Db& db, ChatId chat, std::optional<MessageId> parent, Role role,
                             const std::string& content, MessageState state, std::int64_t created_ms);
RunId insert_run_row(Db& db, MessageId message, const RunRecord& run);
// `blob` must already be a valid trace (encode_trace output or decode_trace-checked).
void insert_trace_row(Db& db, RunId run, std::span<const std::uint8_t> blob, std::uint32_t n_tokens);

}  // namespace moelens::storage
