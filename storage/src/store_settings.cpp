// Store: typed settings and sampling presets.
#include <nlohmann/json.hpp>

#include "store_state.h"

namespace moelens::storage {

namespace {

constexpr const char* kUpsertSetting =
    "INSERT INTO settings (key, type, value) VALUES (?1, ?2, ?3)"
    " ON CONFLICT(key) DO UPDATE SET type = excluded.type, value = excluded.value";
constexpr const char* kGetSetting = "SELECT type, value FROM settings WHERE key = ?1";
constexpr const char* kDeleteSetting = "DELETE FROM settings WHERE key = ?1";
constexpr const char* kUpsertPreset =
    "INSERT INTO presets (name, sampling_json, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?3)"
    " ON CONFLICT(name) DO UPDATE SET sampling_json = excluded.sampling_json, updated_ms = excluded.updated_ms";
constexpr const char* kPresetColumns = "SELECT name, sampling_json, created_ms, updated_ms FROM presets ";
constexpr const char* kDeletePreset = "DELETE FROM presets WHERE name = ?1";

const char* type_name(const SettingValue& v)
{
    static const char* const names[] = {"bool", "int", "double", "string", "json"};
    return names[v.index()];
}

template <typename T>
T typed(Store& store, const std::string& key, T fallback)
{
    auto value = store.get_setting(key);
    if (!value) return fallback;
    if (const T* v = std::get_if<T>(&*value)) return *v;
    throw StorageError(ErrorKind::InvalidInput, "setting '" + key + "' holds a " + type_name(*value) + ", expected a " +
                                                    type_name(SettingValue(fallback)));
}

Preset read_preset(const Statement& s)
{
    return Preset{s.column_text(0), s.column_text(1), s.column_int(2), s.column_int(3)};
}

}  // namespace

void Store::set_setting(const std::string& key, const SettingValue& value)
{
    require_writable("save a setting");
    Statement s = m_state->db.prepare(kUpsertSetting);
    s.bind(1, key).bind(2, type_name(value));
    std::visit(
        [&](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, bool>)
                s.bind(3, v ? 1 : 0);
            else if constexpr (std::is_same_v<T, JsonText>) {
                if (!nlohmann::json::accept(v.text))
                    throw StorageError(ErrorKind::InvalidInput,
                                       "setting '" + key + "': value is not valid JSON: " + v.text.substr(0, 60));
                s.bind(3, v.text);
            } else
                s.bind(3, v);
        },
        value);
    s.run();
}

std::optional<SettingValue> Store::get_setting(const std::string& key)
{
    Statement s = m_state->db.prepare(kGetSetting);
    s.bind(1, key);
    if (!s.step()) return std::nullopt;
    const std::string type = s.column_text(0);
    if (type == "bool") return SettingValue(s.column_int(1) != 0);
    if (type == "int") return SettingValue(s.column_int(1));
    if (type == "double") return SettingValue(s.column_double(1));
    if (type == "string") return SettingValue(s.column_text(1));
    return SettingValue(JsonText{s.column_text(1)});
}

bool Store::get_bool(const std::string& key, bool fallback)
{
    return typed<bool>(*this, key, fallback);
}
std::int64_t Store::get_int(const std::string& key, std::int64_t fallback)
{
    return typed<std::int64_t>(*this, key, fallback);
}
double Store::get_double(const std::string& key, double fallback)
{
    return typed<double>(*this, key, fallback);
}
std::string Store::get_string(const std::string& key, const std::string& fallback)
{
    return typed<std::string>(*this, key, fallback);
}

void Store::remove_setting(const std::string& key)
{
    require_writable("remove a setting");
    m_state->db.prepare(kDeleteSetting).bind(1, key).run();
}

void Store::save_preset(const std::string& name, const std::string& sampling_json)
{
    require_writable("save a preset");
    const auto parsed = nlohmann::json::parse(sampling_json, nullptr, false);
    if (!parsed.is_object())
        throw StorageError(ErrorKind::InvalidInput, "preset '" + name +
                                                        "': sampling settings must be a JSON object, found '" +
                                                        sampling_json.substr(0, 60) + "'");
    if (name.empty()) throw StorageError(ErrorKind::InvalidInput, "a preset needs a name");
    m_state->db.prepare(kUpsertPreset).bind_all(name, sampling_json, now_ms()).run();
}

std::optional<Preset> Store::get_preset(const std::string& name)
{
    Statement s = m_state->db.prepare(std::string(kPresetColumns) + "WHERE name = ?1");
    s.bind(1, name);
    if (!s.step()) return std::nullopt;
    return read_preset(s);
}

std::vector<Preset> Store::list_presets()
{
    Statement s = m_state->db.prepare(std::string(kPresetColumns) + "ORDER BY name");
    std::vector<Preset> presets;
    while (s.step()) presets.push_back(read_preset(s));
    return presets;
}

void Store::delete_preset(const std::string& name)
{
    require_writable("delete a preset");
    m_state->db.prepare(kDeletePreset).bind(1, name).run();
}

}  // namespace moelens::storage
