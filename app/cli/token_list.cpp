#include "token_list.h"

#include <charconv>

#include "args.h"

namespace moelens::cli {

std::vector<int> parse_token_list(const std::string& text)
{
    std::vector<int> out;
    std::size_t begin = 0;
    while (begin <= text.size()) {
        std::size_t end = text.find(',', begin);
        if (end == std::string::npos) end = text.size();
        const std::string item = text.substr(begin, end - begin);
        int v = 0;
        auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
        if (item.empty() || ec != std::errc{} || ptr != item.data() + item.size() || v < 0)
            throw UsageError("--tokens: '" + item + "' is not a token id (expected e.g. 0,17,42)");
        out.push_back(v);
        begin = end + 1;
    }
    return out;
}

}  // namespace moelens::cli
