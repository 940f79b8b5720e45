// export_markdown: the branch on screen of each chat as a readable document.
#include <cstdio>
#include <ctime>

#include "moelens_storage/exchange.h"

namespace moelens::storage {

namespace {

std::string format_utc(std::int64_t ms)
{
    const std::time_t t = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
    return buf;
}

const char* heading(Role role)
{
    switch (role) {
        case Role::System:
            return "System";
        case Role::User:
            return "User";
        case Role::Assistant:
            return "Assistant";
    }
    return "User";
}

// "*model · 412 tokens · 31.2 tok/s · stopped: max_tokens*" under a reply.
std::string run_line(const Run& run)
{
    const RunRecord& r = run.record;
    char speed[64];
    std::snprintf(speed, sizeof speed, "%.1f tok/s", r.decode_tokens_per_s);
    std::string line = "*" + (r.model_path.empty() ? std::string("unknown model") : r.model_path) + " · " +
                       std::to_string(r.tokens_out) + " tokens · " + speed;
    if (!r.stop_reason.empty()) line += " · stop: " + r.stop_reason;
    if (!r.error.empty()) line += " · error: " + r.error;
    return line + "*";
}

void append_chat(Store& store, const Chat& chat, std::string& out)
{
    out += "# " + (chat.title.empty() ? std::string("Untitled chat") : chat.title) + "\n\n";
    if (!chat.model.empty()) out += "- Model: " + chat.model + "\n";
    out += "- Created: " + format_utc(chat.created_ms) + "\n\n";
    if (!chat.system_prompt.empty()) {
        out += "## System prompt\n\n";
        out += chat.system_prompt + "\n\n";
    }
    for (const Message& m : store.load_current_path(chat.id)) {
        out += std::string("## ") + heading(m.role);
        if (m.sibling_count > 1)
            out += " (version " + std::to_string(m.sibling_index) + " of " + std::to_string(m.sibling_count) + ")";
        out += "\n\n" + m.content + "\n\n";
        if (m.state == MessageState::Interrupted || m.state == MessageState::Streaming) out += "*(reply cut off)*\n\n";
        const auto runs = store.list_runs(m.id);
        if (!runs.empty()) out += run_line(runs.back()) + "\n\n";
    }
}

}  // namespace

std::string export_markdown(Store& store, const std::vector<ChatId>& chats)
{
    std::vector<Chat> list;
    if (chats.empty()) {
        ChatListOptions options;
        options.include_archived = true;
        list = store.list_chats(options);
    } else {
        for (ChatId id : chats) {
            auto chat = store.get_chat(id);
            if (!chat) throw StorageError(ErrorKind::NotFound, "chat " + std::to_string(id) + " does not exist");
            list.push_back(std::move(*chat));
        }
    }
    std::string out;
    for (std::size_t i = 0; i < list.size(); ++i) {
        if (i) out += "---\n\n";
        append_chat(store, list[i], out);
    }
    return out;
}

}  // namespace moelens::storage
