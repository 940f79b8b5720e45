#pragma once
// "1,2,3" -> token ids, for the commands that take --tokens.
#include <string>
#include <vector>

namespace moelens::cli {

// Throws UsageError naming the bad entry.
std::vector<int> parse_token_list(const std::string& text);

}  // namespace moelens::cli
