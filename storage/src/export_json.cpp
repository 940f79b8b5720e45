// export_json: chats, all branches, runs and traces as one JSON document.
#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include "base64.h"
#include "moelens_storage/exchange.h"

namespace moelens::storage {

namespace {

std::vector<ChatId> chosen_or_all(Store& store, const std::vector<ChatId>& chats)
{
    if (!chats.empty()) return chats;
    std::vector<ChatId> all;
    ChatListOptions options;
    options.include_archived = true;
    for (const Chat& c : store.list_chats(options)) all.push_back(c.id);
    // Creation order, so that importing keeps the chats' relative order of ids.
    std::sort(all.begin(), all.end());
    return all;
}

nlohmann::json run_to_json(Store& store, const Run& run)
{
    const RunRecord& r = run.record;
    nlohmann::json j = {
        {"model_path", r.model_path},
        {"model_fingerprint", r.model_fingerprint},
        // Embedded as an object so the file stays readable; stored text is valid JSON
        // (a CHECK constraint guarantees it).
        {"sampling", nlohmann::json::parse(r.sampling_json)},
        {"tokens_in", r.tokens_in},
        {"tokens_out", r.tokens_out},
        {"prefill_tokens_per_s", r.prefill_tokens_per_s},
        {"decode_tokens_per_s", r.decode_tokens_per_s},
        {"stop_reason", r.stop_reason},
        {"error", r.error},
        {"started_ms", r.started_ms},
        {"finished_ms", r.finished_ms},
    };
    if (!r.devices_json.empty()) j["devices"] = nlohmann::json::parse(r.devices_json);  // valid: a CHECK constraint
    if (run.has_trace) {
        if (auto blob = store.load_trace_blob(run.id)) j["trace"] = base64_encode(*blob);
    }
    return j;
}

}  // namespace

std::string export_json(Store& store, const std::vector<ChatId>& chats)
{
    nlohmann::json out_chats = nlohmann::json::array();
    for (ChatId id : chosen_or_all(store, chats)) {
        const auto chat = store.get_chat(id);
        if (!chat) throw StorageError(ErrorKind::NotFound, "chat " + std::to_string(id) + " does not exist");
        std::map<MessageId, int> local;  // database id -> 1-based id in the file
        nlohmann::json messages = nlohmann::json::array();
        for (const Message& m : store.list_messages(id)) {
            const int local_id = static_cast<int>(local.size()) + 1;
            local[m.id] = local_id;
            nlohmann::json runs = nlohmann::json::array();
            for (const Run& run : store.list_runs(m.id)) runs.push_back(run_to_json(store, run));
            messages.push_back({
                {"id", local_id},
                {"parent", m.parent_id ? nlohmann::json(local.at(*m.parent_id)) : nlohmann::json(nullptr)},
                {"role", to_string(m.role)},
                {"content", m.content},
                {"state", to_string(m.state)},
                {"created_ms", m.created_ms},
                {"runs", runs},
            });
        }
        out_chats.push_back({
            {"title", chat->title},
            {"model", chat->model},
            {"system_prompt", chat->system_prompt},
            {"pinned", chat->pinned},
            {"archived", chat->archived},
            {"created_ms", chat->created_ms},
            {"updated_ms", chat->updated_ms},
            {"current_leaf",
             chat->current_leaf ? nlohmann::json(local.at(*chat->current_leaf)) : nlohmann::json(nullptr)},
            {"messages", messages},
        });
    }
    const nlohmann::json doc = {
        {"format", "moelens-chats"},
        {"version", kExportFormatVersion},
        {"chats", out_chats},
    };
    // Invalid UTF-8 (which a model can emit) becomes U+FFFD rather than failing the export.
    return doc.dump(1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace moelens::storage
