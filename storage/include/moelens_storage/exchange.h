#pragma once
// Export chats to Markdown (for reading) and JSON (for backup), and import that JSON
// back without loss: titles, flags, times, every branch, states, runs with their
// sampling settings, and routing traces (as the stored blob, base64).
#include <string>
#include <string_view>
#include <vector>

#include "moelens_storage/store.h"

namespace moelens::storage {

inline constexpr int kExportFormatVersion = 1;

// The chats given, or all chats (archived too) when `chats` is empty. Deterministic:
// message ids in the file are numbered 1..n per chat, so exporting an imported file
// gives the same text.
std::string export_json(Store& store, const std::vector<ChatId>& chats = {});

// The branch on screen of each chat, as a readable document.
std::string export_markdown(Store& store, const std::vector<ChatId>& chats = {});

// Adds the chats of an export_json document as new chats, all in one transaction
// (nothing is imported if anything is wrong). Returns their ids in file order.
// Throws StorageError(InvalidInput) naming the JSON path, e.g.
// "chats[0].messages[3].role: expected system, user or assistant, found 'bot'".
// A reply exported while it was streaming is imported as Interrupted.
std::vector<ChatId> import_json(Store& store, std::string_view json);

}  // namespace moelens::storage
