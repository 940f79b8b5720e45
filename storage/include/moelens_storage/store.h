#pragma once
// The chat store: one SQLite database file holding chats, their branching messages,
// the runs that produced assistant replies, routing traces, settings and presets.
//
// Synchronous and not thread-safe by design: the app owns exactly one writable Store,
// on one storage worker thread, and sends it requests (see docs/storage.md). Extra
// read-only Stores (OpenOptions::read_only) may live on other threads.
//
// Every mutating call is one transaction: it happens entirely or not at all, and once
// it returns the change is on disk (WAL, synchronous=FULL). Errors are StorageError.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "moelens_storage/error.h"
#include "moelens_storage/records.h"
#include "moelens_storage/sqlite.h"

namespace moelens::storage {

struct OpenOptions {
    // Never write: for a second connection, or when the user asks to inspect a file.
    bool read_only = false;
    // A damaged file is renamed aside (never deleted) and a fresh database started in
    // its place; with false, open throws StorageError(Corrupt) instead.
    bool move_corrupt_aside = true;
    // When to run PRAGMA quick_check, which reads the whole file (about 1.3 s for 260 MB,
    // see docs/benchmarks.md). By default only after an unclean shutdown: a -wal file
    // left behind means the last session crashed, was killed or lost power (SQLite
    // removes it when the last connection closes). The header is always checked.
    enum class Check { Always, AfterUncleanShutdown, Never };
    Check check = Check::AfterUncleanShutdown;
    int busy_timeout_ms = 5000;
};

// How open went, for the status bar or a dialog. `message` is empty when all is normal.
struct OpenReport {
    bool read_only = false;
    std::optional<ErrorKind> read_only_reason;  // Locked, NewerVersion or ReadOnly when the
                                                // caller asked to write but got read-only
    std::string message;                        // for the user; names the file and the cause
    std::string corrupt_copy_path;              // where a damaged file was kept, if it was
    int schema_version_found = 0;               // before migrations ran
    int interrupted_replies = 0;                // Streaming replies found and marked Interrupted
    bool fully_checked = false;                 // quick_check ran (see OpenOptions::check)
};

struct ChatListOptions {
    bool include_archived = false;
    int limit = -1;  // -1: all
    int offset = 0;
};

class Store {
public:
    // Opens (creating if needed) the database at `path`. Throws StorageError when no
    // safe path exists (e.g. the directory is unwritable and there is no file yet).
    static Store open(const std::string& path, const OpenOptions& options = {});

    ~Store();
    Store(Store&&) noexcept;
    Store& operator=(Store&&) noexcept;

    const OpenReport& open_report() const;
    bool read_only() const;
    const std::string& path() const;
    // The connection, for maintenance and tests. Writing through it bypasses the API's rules.
    Db& db();

    // --- chats -------------------------------------------------------------------
    ChatId create_chat(const NewChat& chat);
    std::optional<Chat> get_chat(ChatId id);
    // Pinned first, then most recently updated.
    std::vector<Chat> list_chats(const ChatListOptions& options = {});
    void rename_chat(ChatId id, const std::string& title);
    void set_chat_pinned(ChatId id, bool pinned);
    void set_chat_archived(ChatId id, bool archived);
    void set_chat_system_prompt(ChatId id, const std::string& system_prompt);
    void set_chat_model(ChatId id, const std::string& model);
    // Removes the chat, its messages, runs and traces, and makes the text unrecoverable
    // from the files: secure_delete zeroes freed pages, the search index is merged so
    // no deleted words remain, and the WAL is checkpointed and truncated.
    void delete_chat(ChatId id);

    // --- messages and branches -------------------------------------------------------
    // Appends a complete message after the chat's current leaf (or as the first message)
    // and makes it the current leaf. For the user's and system messages.
    MessageId append_message(ChatId chat, Role role, const std::string& content);
    // Edit: adds a sibling of `id` (same parent and role) holding `content` and makes it
    // the current leaf. The original and its replies stay reachable as another branch.
    MessageId edit_message(MessageId id, const std::string& content);
    // Starts an assistant reply under `parent` (a user message). Calling it again with
    // the same parent is "regenerate": a new sibling. The reply becomes the current leaf.
    MessageId begin_reply(ChatId chat, MessageId parent);
    // Saves the streamed text so far (the caller batches, e.g. every 250 ms or 32 tokens).
    void append_reply_text(MessageId reply, std::string_view delta);
    void set_reply_text(MessageId reply, const std::string& text);
    // Ends a reply in one transaction: final text and state (Complete, Stopped or
    // Failed), the run record and, if given, its routing trace. Returns the run id.
    RunId finish_reply(MessageId reply, const std::string& text, MessageState state, const RunRecord& run,
                       const RoutingTrace* trace = nullptr);

    std::optional<Message> get_message(MessageId id);
    // The branch on screen: root to the chat's current leaf, with sibling positions.
    std::vector<Message> load_current_path(ChatId chat);
    // Every message of the chat, all branches, in creation order.
    std::vector<Message> list_messages(ChatId chat);
    // `id` and its siblings (same parent), oldest first: the `< 2/3 >` control.
    std::vector<MessageId> list_siblings(MessageId id);
    // Shows the branch through `id`: the current leaf becomes the end of the newest
    // line of replies below `id` (or `id` itself).
    void select_branch(MessageId id);

    // Deletes `id` and every reply below it (all branches), with their runs and traces,
    // scrubbed from the files as delete_chat does. If the branch on screen went with
    // it, the newest remaining sibling's branch is shown, else the parent's.
    void delete_branch(MessageId id);

    // --- runs and traces -----------------------------------------------------------
    // Runs of a message, oldest first (one per generation of that reply).
    std::vector<Run> list_runs(MessageId message);
    std::optional<RoutingTrace> load_trace(RunId run);
    // The stored blob as is (see trace_codec.h); for export.
    std::optional<std::vector<std::uint8_t>> load_trace_blob(RunId run);

    // --- comparisons (the compare view) -------------------------------------------------
    // Stores a comparison with its columns (results empty). `chat` must exist when given;
    // settings must be JSON objects (InvalidInput otherwise).
    ComparisonId create_comparison(const NewComparison& comparison);
    // Newest first; with `chat`, only that chat's, else all.
    std::vector<ComparisonSummary> list_comparisons(std::optional<ChatId> chat = std::nullopt);
    // With every column's result and decoded trace (StorageError(TraceFormat) naming the
    // comparison and column when a blob is damaged).
    std::optional<Comparison> load_comparison(ComparisonId id);
    // Saves column `position`'s result and, if given, its routing trace (replacing any
    // earlier ones). NotFound when the comparison has no such column.
    void save_comparison_result(ComparisonId id, int position, const ComparisonResult& result,
                                const RoutingTrace* trace = nullptr);
    // A comparison over a new prompt joins the chat its kept answer went to.
    void set_comparison_chat(ComparisonId id, ChatId chat);
    // Removes the comparison with its columns and traces (scrubbed as delete_chat does).
    void delete_comparison(ComparisonId id);

    // --- settings (typed key/value) and presets ---------------------------------------
    void set_setting(const std::string& key, const SettingValue& value);
    std::optional<SettingValue> get_setting(const std::string& key);
    // Typed getters: `fallback` when absent; StorageError(InvalidInput) when the stored
    // value has another type (the message names the key and both types).
    bool get_bool(const std::string& key, bool fallback);
    std::int64_t get_int(const std::string& key, std::int64_t fallback);
    double get_double(const std::string& key, double fallback);
    std::string get_string(const std::string& key, const std::string& fallback);
    void remove_setting(const std::string& key);

    // Creates or replaces; `sampling_json` must be a JSON object.
    void save_preset(const std::string& name, const std::string& sampling_json);
    std::optional<Preset> get_preset(const std::string& name);
    std::vector<Preset> list_presets();  // by name
    void delete_preset(const std::string& name);

    // --- search ------------------------------------------------------------------------
    // Full-text search over all messages; every word of `query` must occur, as a word
    // or a word's beginning (search-as-you-type). Case and diacritics are ignored. Best
    // matches first. Free text is safe: it is quoted, never read as FTS5 syntax.
    std::vector<SearchHit> search(const std::string& query, int limit = 50);

    // --- maintenance --------------------------------------------------------------------
    // Copies the WAL into the database and truncates it (done by delete_chat too).
    void checkpoint();

private:
    struct State;
    explicit Store(std::unique_ptr<State> state);
    void require_writable(const char* action) const;
    std::unique_ptr<State> m_state;
};

}  // namespace moelens::storage
