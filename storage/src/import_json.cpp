// import_json: the inverse of export_json, validated field by field, in one transaction.
#include <map>

#include <nlohmann/json.hpp>

#include "base64.h"
#include "moelens_storage/exchange.h"
#include "moelens_storage/trace_codec.h"
#include "rows.h"

namespace moelens::storage {

namespace {

using nlohmann::json;

constexpr const char* kInsertChat =
    "INSERT INTO chats (title, model, system_prompt, pinned, archived, created_ms, updated_ms)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr const char* kSetLeaf = "UPDATE chats SET current_leaf_id = ?2 WHERE id = ?1";

[[noreturn]] void bad(const std::string& path, const std::string& what)
{
    throw StorageError(ErrorKind::InvalidInput, "import: " + path + ": " + what);
}

std::string type_of(const json& j)
{
    return j.type_name();
}

const json& field(const json& obj, const std::string& path, const char* key)
{
    const auto it = obj.find(key);
    if (it == obj.end()) bad(path + "." + key, "missing");
    return *it;
}

std::string get_string(const json& obj, const std::string& path, const char* key)
{
    const json& j = field(obj, path, key);
    if (!j.is_string()) bad(path + "." + key, "expected a string, found " + type_of(j));
    return j.get<std::string>();
}

std::int64_t get_int(const json& obj, const std::string& path, const char* key)
{
    const json& j = field(obj, path, key);
    if (!j.is_number_integer()) bad(path + "." + key, "expected an integer, found " + type_of(j));
    return j.get<std::int64_t>();
}

double get_number(const json& obj, const std::string& path, const char* key)
{
    const json& j = field(obj, path, key);
    if (!j.is_number()) bad(path + "." + key, "expected a number, found " + type_of(j));
    return j.get<double>();
}

bool get_bool(const json& obj, const std::string& path, const char* key)
{
    const json& j = field(obj, path, key);
    if (!j.is_boolean()) bad(path + "." + key, "expected true or false, found " + type_of(j));
    return j.get<bool>();
}

const json& get_array(const json& obj, const std::string& path, const char* key)
{
    const json& j = field(obj, path, key);
    if (!j.is_array()) bad(path + "." + key, "expected an array, found " + type_of(j));
    return j;
}

void import_run(Db& db, MessageId message, const json& j, const std::string& path)
{
    if (!j.is_object()) bad(path, "expected an object, found " + type_of(j));
    RunRecord r;
    r.model_path = get_string(j, path, "model_path");
    r.model_fingerprint = get_string(j, path, "model_fingerprint");
    const json& sampling = field(j, path, "sampling");
    if (!sampling.is_object()) bad(path + ".sampling", "expected an object, found " + type_of(sampling));
    r.sampling_json = sampling.dump();
    r.tokens_in = get_int(j, path, "tokens_in");
    r.tokens_out = get_int(j, path, "tokens_out");
    r.prefill_tokens_per_s = get_number(j, path, "prefill_tokens_per_s");
    r.decode_tokens_per_s = get_number(j, path, "decode_tokens_per_s");
    r.stop_reason = get_string(j, path, "stop_reason");
    r.error = get_string(j, path, "error");
    r.started_ms = get_int(j, path, "started_ms");
    r.finished_ms = get_int(j, path, "finished_ms");
    if (j.contains("devices")) {
        const json& devices = j["devices"];
        if (!devices.is_object()) bad(path + ".devices", "expected an object, found " + type_of(devices));
        r.devices_json = devices.dump();
    }
    const RunId run = insert_run_row(db, message, r);
    if (j.contains("trace")) {
        const auto blob = base64_decode(get_string(j, path, "trace"));
        if (!blob) bad(path + ".trace", "not valid base64");
        RoutingTrace trace;
        try {
            trace = decode_trace(*blob);
        } catch (const StorageError& e) {
            bad(path + ".trace", e.what());
        }
        insert_trace_row(db, run, *blob, static_cast<std::uint32_t>(trace.n_tokens()));
    }
}

ChatId import_chat(Db& db, const json& c, const std::string& path)
{
    if (!c.is_object()) bad(path, "expected an object, found " + type_of(c));
    db.prepare(kInsertChat)
        .bind_all(get_string(c, path, "title"), get_string(c, path, "model"), get_string(c, path, "system_prompt"),
                  get_bool(c, path, "pinned") ? 1 : 0, get_bool(c, path, "archived") ? 1 : 0,
                  get_int(c, path, "created_ms"), get_int(c, path, "updated_ms"))
        .run();
    const ChatId chat = db.last_insert_rowid();

    // File ids -> new database ids. A parent must appear before its children, which
    // also rules out cycles.
    std::map<std::int64_t, MessageId> ids;
    const json& messages = get_array(c, path, "messages");
    for (std::size_t i = 0; i < messages.size(); ++i) {
        const json& m = messages[i];
        const std::string mpath = path + ".messages[" + std::to_string(i) + "]";
        if (!m.is_object()) bad(mpath, "expected an object, found " + type_of(m));
        const std::int64_t file_id = get_int(m, mpath, "id");
        if (ids.count(file_id)) bad(mpath + ".id", "duplicate id " + std::to_string(file_id));
        std::optional<MessageId> parent;
        const json& p = field(m, mpath, "parent");
        if (!p.is_null()) {
            if (!p.is_number_integer()) bad(mpath + ".parent", "expected an id or null, found " + type_of(p));
            const auto it = ids.find(p.get<std::int64_t>());
            if (it == ids.end())
                bad(mpath + ".parent",
                    "id " + std::to_string(p.get<std::int64_t>()) + " is not an earlier message of this chat");
            parent = it->second;
        }
        const std::string role_text = get_string(m, mpath, "role");
        const auto role = role_from_string(role_text);
        if (!role) bad(mpath + ".role", "expected system, user or assistant, found '" + role_text + "'");
        const std::string state_text = get_string(m, mpath, "state");
        auto state = message_state_from_string(state_text);
        if (!state)
            bad(mpath + ".state",
                "expected complete, stopped, failed, interrupted or streaming, found '" + state_text + "'");
        if (*state == MessageState::Streaming) state = MessageState::Interrupted;
        const MessageId id = insert_message_row(db, chat, parent, *role, get_string(m, mpath, "content"), *state,
                                                get_int(m, mpath, "created_ms"));
        ids[file_id] = id;
        const json& runs = get_array(m, mpath, "runs");
        for (std::size_t k = 0; k < runs.size(); ++k)
            import_run(db, id, runs[k], mpath + ".runs[" + std::to_string(k) + "]");
    }
    const json& leaf = field(c, path, "current_leaf");
    if (!leaf.is_null()) {
        if (!leaf.is_number_integer()) bad(path + ".current_leaf", "expected an id or null, found " + type_of(leaf));
        const auto it = ids.find(leaf.get<std::int64_t>());
        if (it == ids.end())
            bad(path + ".current_leaf",
                "id " + std::to_string(leaf.get<std::int64_t>()) + " is not a message of this chat");
        db.prepare(kSetLeaf).bind_all(chat, it->second).run();
    }
    return chat;
}

}  // namespace

std::vector<ChatId> import_json(Store& store, std::string_view text)
{
    if (store.read_only())
        throw StorageError(store.open_report().read_only_reason.value_or(ErrorKind::ReadOnly),
                           "cannot import: " + store.path() + " is open read-only");
    json doc;
    try {
        doc = json::parse(text);
    } catch (const json::exception& e) {
        // parse_error, and out_of_range for numbers beyond a double (1e400): both bad input.
        throw StorageError(ErrorKind::InvalidInput, std::string("import: not valid JSON: ") + e.what());
    }
    if (!doc.is_object()) bad("$", "expected an object, found " + type_of(doc));
    if (get_string(doc, "$", "format") != "moelens-chats") bad("$.format", "expected 'moelens-chats'");
    const std::int64_t version = get_int(doc, "$", "version");
    if (version < 1 || version > kExportFormatVersion)
        bad("$.version", "format version " + std::to_string(version) + " is not supported (this build reads up to " +
                             std::to_string(kExportFormatVersion) + ")");
    const json& chats = get_array(doc, "$", "chats");

    Db& db = store.db();
    Transaction tx(db);
    std::vector<ChatId> imported;
    for (std::size_t i = 0; i < chats.size(); ++i)
        imported.push_back(import_chat(db, chats[i], "chats[" + std::to_string(i) + "]"));
    tx.commit();
    return imported;
}

}  // namespace moelens::storage
