// Store: runs and routing traces.
#include "moelens_storage/trace_codec.h"
#include "rows.h"
#include "store_state.h"

namespace moelens::storage {

namespace {

constexpr const char* kInsertRun =
    "INSERT INTO runs (message_id, model_path, model_fingerprint, sampling_json, tokens_in, tokens_out, prefill_tps,"
    " decode_tps, stop_reason, error, started_ms, finished_ms, devices_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
    " ?9, ?10, ?11, ?12, ?13)";
constexpr const char* kInsertTrace =
    "INSERT INTO traces (run_id, format_version, n_tokens, data) VALUES (?1, ?2, ?3, ?4)";
constexpr const char* kListRuns =
    "SELECT r.id, r.message_id, r.model_path, r.model_fingerprint, r.sampling_json, r.tokens_in, r.tokens_out, "
    "r.prefill_tps,"
    " r.decode_tps, r.stop_reason, r.error, r.started_ms, r.finished_ms, t.run_id IS NOT NULL, r.devices_json"
    " FROM runs r LEFT JOIN traces t ON t.run_id = r.id WHERE r.message_id = ?1 ORDER BY r.id";
constexpr const char* kLoadTrace = "SELECT data FROM traces WHERE run_id = ?1";

}  // namespace

RunId insert_run_row(Db& db, MessageId message, const RunRecord& r)
{
    Statement s = db.prepare(kInsertRun);
    s.bind_all(message, r.model_path, r.model_fingerprint,
               r.sampling_json.empty() ? std::string("{}") : r.sampling_json, r.tokens_in, r.tokens_out,
               r.prefill_tokens_per_s, r.decode_tokens_per_s, r.stop_reason, r.error, r.started_ms, r.finished_ms);
    if (r.devices_json.empty())
        s.bind_null(13);
    else
        s.bind(13, r.devices_json);
    try {
        s.run();
    } catch (const StorageError& e) {
        if (e.kind() != ErrorKind::Constraint) throw;
        throw StorageError(ErrorKind::InvalidInput, "run of message " + std::to_string(message) +
                                                        ": sampling settings and device traffic must be valid JSON, "
                                                        "found '" + r.sampling_json.substr(0, 60) + "' and '" +
                                                        r.devices_json.substr(0, 60) + "'");
    }
    return db.last_insert_rowid();
}

void insert_trace_row(Db& db, RunId run, std::span<const std::uint8_t> blob, std::uint32_t n_tokens)
{
    Statement s = db.prepare(kInsertTrace);
    s.bind_all(run, static_cast<int>(kTraceFormatVersion), static_cast<std::int64_t>(n_tokens));
    s.bind_blob(4, blob);
    s.run();
}

std::vector<Run> Store::list_runs(MessageId message)
{
    Statement s = m_state->db.prepare(kListRuns);
    s.bind(1, message);
    std::vector<Run> runs;
    while (s.step()) {
        Run run;
        run.id = s.column_int(0);
        run.message_id = s.column_int(1);
        RunRecord& r = run.record;
        r.model_path = s.column_text(2);
        r.model_fingerprint = s.column_text(3);
        r.sampling_json = s.column_text(4);
        r.tokens_in = s.column_int(5);
        r.tokens_out = s.column_int(6);
        r.prefill_tokens_per_s = s.column_double(7);
        r.decode_tokens_per_s = s.column_double(8);
        r.stop_reason = s.column_text(9);
        r.error = s.column_text(10);
        r.started_ms = s.column_int(11);
        r.finished_ms = s.column_int(12);
        run.has_trace = s.column_int(13) != 0;
        if (!s.is_null(14)) r.devices_json = s.column_text(14);
        runs.push_back(std::move(run));
    }
    return runs;
}

std::optional<std::vector<std::uint8_t>> Store::load_trace_blob(RunId run)
{
    Statement s = m_state->db.prepare(kLoadTrace);
    s.bind(1, run);
    if (!s.step()) return std::nullopt;
    return s.column_blob(0);
}

std::optional<RoutingTrace> Store::load_trace(RunId run)
{
    auto blob = load_trace_blob(run);
    if (!blob) return std::nullopt;
    try {
        return decode_trace(*blob);
    } catch (const StorageError& e) {
        throw StorageError(e.kind(), "trace of run " + std::to_string(run) + " in " + m_state->path + ": " + e.what());
    }
}

}  // namespace moelens::storage
