#include "id_lists.h"

#include <charconv>

#include "args.h"

namespace moelens::cli {
namespace {

// Every comma-separated entry must be a whole number of type T, at least `min`.
template <typename T>
std::vector<T> parse_list(const std::string& text, T min, const std::string& option, const std::string& expected)
{
    std::vector<T> out;
    std::size_t begin = 0;
    while (begin <= text.size()) {
        std::size_t end = text.find(',', begin);
        if (end == std::string::npos) end = text.size();
        const std::string item = text.substr(begin, end - begin);
        T v = 0;
        auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
        if (item.empty() || ec != std::errc{} || ptr != item.data() + item.size() || v < min)
            throw UsageError(option + ": '" + item + "' is not " + expected);
        out.push_back(v);
        begin = end + 1;
    }
    return out;
}

}  // namespace

std::vector<int> parse_token_list(const std::string& text)
{
    return parse_list<int>(text, 0, "--tokens", "a token id (expected e.g. 0,17,42)");
}

std::vector<std::int64_t> parse_chat_id_list(const std::string& text)
{
    return parse_list<std::int64_t>(text, 1, "--chats", "a chat id (expected e.g. 3,7)");
}

}  // namespace moelens::cli
