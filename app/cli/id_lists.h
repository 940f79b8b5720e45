#pragma once
// "1,2,3" -> ids, for the commands that take --tokens or --chats.
#include <cstdint>
#include <string>
#include <vector>

namespace moelens::cli {

// Throws UsageError naming the bad entry.
std::vector<int> parse_token_list(const std::string& text);
std::vector<std::int64_t> parse_chat_id_list(const std::string& text);

}  // namespace moelens::cli
