// Store operations on every table: chats, branching messages, streaming replies, runs
// and traces, settings, presets, search, and deletion that really removes text.
#include <QTest>

#include "moelens_storage/store.h"
#include "moelens_storage/trace_codec.h"
#include "storage_test_util.h"

using namespace moelens::storage;
using moelens::storage::test::make_trace;
using moelens::storage::test::read_file;
using moelens::storage::test::TempDir;

namespace {

template <typename F>
ErrorKind error_kind(F&& f)
{
    try {
        f();
    } catch (const StorageError& e) {
        return e.kind();
    }
    throw std::runtime_error("expected a StorageError");
}

RunRecord sample_run()
{
    RunRecord r;
    r.model_path = "/models/DeepSeek-V2-Lite";
    r.model_fingerprint = "sha256:abc";
    r.sampling_json = R"({"temperature":0.7,"top_p":0.95,"seed":42})";
    r.tokens_in = 12;
    r.tokens_out = 34;
    r.prefill_tokens_per_s = 250.5;
    r.decode_tokens_per_s = 21.25;
    r.stop_reason = "eos";
    r.started_ms = 1000;
    r.finished_ms = 2600;
    return r;
}

std::vector<std::string> contents(const std::vector<Message>& path)
{
    std::vector<std::string> out;
    for (const Message& m : path) out.push_back(m.content);
    return out;
}

}  // namespace

class TestStore : public QObject {
    Q_OBJECT

    std::unique_ptr<TempDir> m_dir;
    std::optional<Store> m_store;

private slots:
    void init()
    {
        m_dir = std::make_unique<TempDir>();
        m_store.emplace(Store::open(m_dir->file("chats.db")));
    }
    void cleanup()
    {
        m_store.reset();
        m_dir.reset();
    }

    void freshDatabaseIsDurable()
    {
        Db& db = m_store->db();
        QCOMPARE(db.query_text("PRAGMA journal_mode"), std::string("wal"));
        QCOMPARE(db.query_int("PRAGMA synchronous"), std::int64_t{2});  // FULL
        QCOMPARE(db.query_int("PRAGMA foreign_keys"), std::int64_t{1});
        QCOMPARE(db.query_int("PRAGMA secure_delete"), std::int64_t{1});
        QVERIFY(!m_store->read_only());
        QVERIFY(m_store->open_report().message.empty());
    }

    void chats()
    {
        const ChatId a = m_store->create_chat({"First", "lite", "Be brief."});
        QTest::qWait(2);
        const ChatId b = m_store->create_chat({"Second", "v2", ""});
        auto chat = m_store->get_chat(a);
        QVERIFY(chat);
        QCOMPARE(chat->title, std::string("First"));
        QCOMPARE(chat->model, std::string("lite"));
        QCOMPARE(chat->system_prompt, std::string("Be brief."));
        QVERIFY(!chat->current_leaf);
        QCOMPARE(chat->message_count, std::int64_t{0});

        // Most recently updated first; pinned before all.
        auto list = m_store->list_chats();
        QCOMPARE(list.size(), std::size_t{2});
        QCOMPARE(list[0].id, b);
        m_store->set_chat_pinned(a, true);
        QCOMPARE(m_store->list_chats()[0].id, a);

        m_store->rename_chat(b, "Renamed");
        m_store->set_chat_system_prompt(b, "You are terse.");
        m_store->set_chat_model(b, "v2-chat");
        chat = m_store->get_chat(b);
        QCOMPARE(chat->title, std::string("Renamed"));
        QCOMPARE(chat->system_prompt, std::string("You are terse."));
        QCOMPARE(chat->model, std::string("v2-chat"));

        m_store->set_chat_archived(b, true);
        QCOMPARE(m_store->list_chats().size(), std::size_t{1});
        ChatListOptions all;
        all.include_archived = true;
        QCOMPARE(m_store->list_chats(all).size(), std::size_t{2});
        all.limit = 1;
        all.offset = 1;
        QCOMPARE(m_store->list_chats(all).size(), std::size_t{1});

        QCOMPARE(error_kind([&] { m_store->rename_chat(999, "x"); }), ErrorKind::NotFound);
        QVERIFY(!m_store->get_chat(999));
        m_store->delete_chat(a);
        QVERIFY(!m_store->get_chat(a));
        QCOMPARE(error_kind([&] { m_store->delete_chat(a); }), ErrorKind::NotFound);
    }

    void appendAndBranch()
    {
        const ChatId chat = m_store->create_chat({"Branches", "", ""});
        const MessageId u1 = m_store->append_message(chat, Role::User, "Hello");
        const MessageId a1 = m_store->begin_reply(chat, u1);
        m_store->finish_reply(a1, "Hi!", MessageState::Complete, sample_run());
        const MessageId u2 = m_store->append_message(chat, Role::User, "Tell me a joke");
        QCOMPARE(m_store->get_message(u2)->parent_id, std::optional<MessageId>(a1));
        const MessageId a2 = m_store->begin_reply(chat, u2);
        m_store->finish_reply(a2, "Joke one", MessageState::Complete, sample_run());

        // Regenerate: a sibling of a2 under u2.
        const MessageId a2b = m_store->begin_reply(chat, u2);
        m_store->finish_reply(a2b, "Joke two", MessageState::Complete, sample_run());
        QCOMPARE(m_store->list_siblings(a2), (std::vector<MessageId>{a2, a2b}));
        auto path = m_store->load_current_path(chat);
        QCOMPARE(contents(path), (std::vector<std::string>{"Hello", "Hi!", "Tell me a joke", "Joke two"}));
        QCOMPARE(path[3].sibling_index, 2);
        QCOMPARE(path[3].sibling_count, 2);
        QCOMPARE(path[0].sibling_count, 1);

        // Edit the first question: a new root sibling; the old branch remains.
        const MessageId u1b = m_store->edit_message(u1, "Good morning");
        QCOMPARE(m_store->list_siblings(u1), (std::vector<MessageId>{u1, u1b}));
        QCOMPARE(contents(m_store->load_current_path(chat)), (std::vector<std::string>{"Good morning"}));

        // Back to the first root: the newest line below it is shown.
        m_store->select_branch(u1);
        QCOMPARE(contents(m_store->load_current_path(chat)),
                 (std::vector<std::string>{"Hello", "Hi!", "Tell me a joke", "Joke two"}));
        m_store->select_branch(a2);
        QCOMPARE(contents(m_store->load_current_path(chat)),
                 (std::vector<std::string>{"Hello", "Hi!", "Tell me a joke", "Joke one"}));
        QCOMPARE(m_store->get_chat(chat)->current_leaf, std::optional<MessageId>(a2));
        QCOMPARE(m_store->list_messages(chat).size(), std::size_t{6});
        QCOMPARE(m_store->get_chat(chat)->message_count, std::int64_t{6});

        // A reply under another chat's message is refused.
        const ChatId other = m_store->create_chat({"Other", "", ""});
        QCOMPARE(error_kind([&] { m_store->begin_reply(other, u1); }), ErrorKind::InvalidInput);
        QCOMPARE(error_kind([&] { m_store->list_siblings(12345); }), ErrorKind::NotFound);
        QCOMPARE(error_kind([&] { m_store->load_current_path(12345); }), ErrorKind::NotFound);
    }

    void streamingReply()
    {
        const ChatId chat = m_store->create_chat({"Stream", "", ""});
        const MessageId u = m_store->append_message(chat, Role::User, "Count");
        const MessageId a = m_store->begin_reply(chat, u);
        QCOMPARE(m_store->get_message(a)->state, MessageState::Streaming);
        m_store->append_reply_text(a, "one ");
        m_store->append_reply_text(a, "two ");
        QCOMPARE(m_store->get_message(a)->content, std::string("one two "));
        m_store->set_reply_text(a, "one two three");
        QCOMPARE(m_store->get_message(a)->content, std::string("one two three"));

        const RoutingTrace trace = make_trace(40);
        const RunId run = m_store->finish_reply(a, "one two three four", MessageState::Stopped, sample_run(), &trace);
        const Message done = *m_store->get_message(a);
        QCOMPARE(done.content, std::string("one two three four"));
        QCOMPARE(done.state, MessageState::Stopped);

        // Finished replies take no more text; wrong end states are refused.
        QCOMPARE(error_kind([&] { m_store->append_reply_text(a, "five"); }), ErrorKind::InvalidInput);
        QCOMPARE(error_kind([&] { m_store->append_reply_text(4242, "x"); }), ErrorKind::NotFound);
        const MessageId b = m_store->begin_reply(chat, u);
        QCOMPARE(error_kind([&] { m_store->finish_reply(b, "", MessageState::Streaming, sample_run()); }),
                 ErrorKind::InvalidInput);

        // A bad trace costs nothing: the reply stays streaming and can still finish.
        RoutingTrace bad = make_trace(2);
        bad.expert_ids[0] = 500;
        QCOMPARE(error_kind([&] { m_store->finish_reply(b, "x", MessageState::Complete, sample_run(), &bad); }),
                 ErrorKind::TraceFormat);
        QCOMPARE(m_store->get_message(b)->state, MessageState::Streaming);
        QVERIFY(m_store->list_runs(b).empty());
        // Device traffic is kept as given, or refused (with nothing written) when it is not JSON.
        const MessageId c = m_store->begin_reply(chat, u);
        RunRecord spread = sample_run();
        spread.devices_json = "{not json";
        QCOMPARE(error_kind([&] { m_store->finish_reply(c, "x", MessageState::Complete, spread); }), ErrorKind::InvalidInput);
        QCOMPARE(m_store->get_message(c)->state, MessageState::Streaming);
        spread.devices_json = R"({"devices":4,"home":1})";
        m_store->finish_reply(c, "x", MessageState::Complete, spread);
        QCOMPARE(m_store->list_runs(c).at(0).record.devices_json, spread.devices_json);
        QVERIFY(m_store->list_runs(a).at(0).record.devices_json.empty());

        // Reopening marks a reply left streaming (a crash) as interrupted.
        m_store->append_reply_text(b, "partial");
        m_store.reset();
        m_store.emplace(Store::open(m_dir->file("chats.db")));
        QCOMPARE(m_store->open_report().interrupted_replies, 1);
        QCOMPARE(m_store->get_message(b)->state, MessageState::Interrupted);
        QCOMPARE(m_store->get_message(b)->content, std::string("partial"));
        QVERIFY(m_store->load_trace(run));
    }

    void runsAndTraces()
    {
        const ChatId chat = m_store->create_chat({"Runs", "", ""});
        const MessageId u = m_store->append_message(chat, Role::User, "Q");
        const MessageId a = m_store->begin_reply(chat, u);
        const RoutingTrace trace = make_trace(100, 26, 6, 64, 3, 2);
        const RunId id = m_store->finish_reply(a, "A", MessageState::Complete, sample_run(), &trace);

        const auto runs = m_store->list_runs(a);
        QCOMPARE(runs.size(), std::size_t{1});
        const RunRecord expected = sample_run();
        QCOMPARE(runs[0].id, id);
        QCOMPARE(runs[0].message_id, a);
        QVERIFY(runs[0].has_trace);
        QCOMPARE(runs[0].record.model_path, expected.model_path);
        QCOMPARE(runs[0].record.model_fingerprint, expected.model_fingerprint);
        QCOMPARE(runs[0].record.sampling_json, expected.sampling_json);
        QCOMPARE(runs[0].record.tokens_in, expected.tokens_in);
        QCOMPARE(runs[0].record.tokens_out, expected.tokens_out);
        QCOMPARE(runs[0].record.prefill_tokens_per_s, expected.prefill_tokens_per_s);
        QCOMPARE(runs[0].record.decode_tokens_per_s, expected.decode_tokens_per_s);
        QCOMPARE(runs[0].record.stop_reason, expected.stop_reason);
        QCOMPARE(runs[0].record.started_ms, expected.started_ms);
        QCOMPARE(runs[0].record.finished_ms, expected.finished_ms);

        const auto loaded = m_store->load_trace(id);
        QVERIFY(loaded);
        QVERIFY(loaded->expert_ids == trace.expert_ids);
        QVERIFY(loaded->group_ids == trace.group_ids);
        QVERIFY(loaded->token_texts == trace.token_texts);
        QVERIFY(!m_store->load_trace(id + 1));

        // Without a trace; invalid sampling JSON is refused with the reason.
        const MessageId b = m_store->begin_reply(chat, u);
        RunRecord failed = sample_run();
        failed.error = "out of memory";
        failed.stop_reason = "error";
        const RunId id2 = m_store->finish_reply(b, "", MessageState::Failed, failed);
        QVERIFY(!m_store->list_runs(b)[0].has_trace);
        QCOMPARE(m_store->list_runs(b)[0].record.error, std::string("out of memory"));
        QVERIFY(!m_store->load_trace(id2));
        const MessageId c = m_store->begin_reply(chat, u);
        RunRecord broken = sample_run();
        broken.sampling_json = "{temperature";
        QCOMPARE(error_kind([&] { m_store->finish_reply(c, "", MessageState::Complete, broken); }),
                 ErrorKind::InvalidInput);

        // A trace damaged on disk is reported, not trusted.
        m_store->db().exec("UPDATE traces SET data = substr(data, 1, 100) WHERE run_id = " + std::to_string(id));
        QCOMPARE(error_kind([&] { m_store->load_trace(id); }), ErrorKind::TraceFormat);

        // Deleting the chat removes runs and traces with it.
        m_store->delete_chat(chat);
        QCOMPARE(m_store->db().query_int("SELECT count(*) FROM runs"), std::int64_t{0});
        QCOMPARE(m_store->db().query_int("SELECT count(*) FROM traces"), std::int64_t{0});
        QCOMPARE(m_store->db().query_int("SELECT count(*) FROM messages"), std::int64_t{0});
    }

    void settings()
    {
        QVERIFY(!m_store->get_setting("ui.theme"));
        QCOMPARE(m_store->get_string("ui.theme", "system"), std::string("system"));
        m_store->set_setting("ui.theme", std::string("dark"));
        m_store->set_setting("ui.font_size", std::int64_t{13});
        m_store->set_setting("ui.scale", 1.25);
        m_store->set_setting("ui.sidebar", true);
        m_store->set_setting("engine.devices", JsonText{R"(["cpu"])"});
        QCOMPARE(m_store->get_string("ui.theme", ""), std::string("dark"));
        QCOMPARE(m_store->get_int("ui.font_size", 0), std::int64_t{13});
        QCOMPARE(m_store->get_double("ui.scale", 0), 1.25);
        QCOMPARE(m_store->get_bool("ui.sidebar", false), true);
        QVERIFY(*m_store->get_setting("engine.devices") == SettingValue(JsonText{R"(["cpu"])"}));
        // A type change replaces the value; reading with the wrong type names both.
        m_store->set_setting("ui.font_size", std::string("large"));
        try {
            m_store->get_int("ui.font_size", 0);
            QFAIL("no error");
        } catch (const StorageError& e) {
            QCOMPARE(e.kind(), ErrorKind::InvalidInput);
            QVERIFY(std::string(e.what()).find("'ui.font_size' holds a string, expected a int") != std::string::npos);
        }
        QCOMPARE(error_kind([&] { m_store->set_setting("x", JsonText{"{nope"}); }), ErrorKind::InvalidInput);
        m_store->remove_setting("ui.theme");
        QVERIFY(!m_store->get_setting("ui.theme"));
    }

    void presets()
    {
        m_store->save_preset("precise", R"({"temperature":0.2})");
        m_store->save_preset("creative", R"({"temperature":1.1,"top_p":0.9})");
        auto list = m_store->list_presets();
        QCOMPARE(list.size(), std::size_t{2});
        QCOMPARE(list[0].name, std::string("creative"));
        m_store->save_preset("precise", R"({"temperature":0.1})");
        QCOMPARE(m_store->get_preset("precise")->sampling_json, std::string(R"({"temperature":0.1})"));
        QCOMPARE(m_store->list_presets().size(), std::size_t{2});
        QCOMPARE(error_kind([&] { m_store->save_preset("bad", "[1,2]"); }), ErrorKind::InvalidInput);
        QCOMPARE(error_kind([&] { m_store->save_preset("", "{}"); }), ErrorKind::InvalidInput);
        m_store->delete_preset("precise");
        QVERIFY(!m_store->get_preset("precise"));
    }

    void search()
    {
        const ChatId a = m_store->create_chat({"Cooking", "", ""});
        const ChatId b = m_store->create_chat({"Travel", "", ""});
        const MessageId m1 = m_store->append_message(a, Role::User, "How do I make crème brûlée at home?");
        m_store->append_message(b, Role::User, "Best time to visit Kyoto for the maple leaves");
        const MessageId r = m_store->begin_reply(b, m_store->get_chat(b)->current_leaf.value());
        m_store->append_reply_text(r, "Late November, when the maples turn red.");

        auto hits = m_store->search("creme brulee");  // diacritics folded
        QCOMPARE(hits.size(), std::size_t{1});
        QCOMPARE(hits[0].message_id, m1);
        QCOMPARE(hits[0].chat_id, a);
        QCOMPARE(hits[0].chat_title, std::string("Cooking"));
        QVERIFY(hits[0].snippet.find(std::string(kSearchMatchOpen) + "crème" + kSearchMatchClose) != std::string::npos);

        QCOMPARE(m_store->search("maple").size(), std::size_t{2});  // prefix of "maples" too
        QCOMPARE(m_store->search("kyo").size(), std::size_t{1});    // search-as-you-type
        QCOMPARE(m_store->search("maple red").size(), std::size_t{1});
        QCOMPARE(m_store->search("red kyoto").size(), std::size_t{0});  // every word must occur
        QVERIFY(m_store->search("   ").empty());
        // FTS5 syntax in the query is just text.
        QVERIFY(m_store->search("\"unbalanced AND (NEAR").empty());
        QVERIFY(m_store->search("col:on * - ^").empty());

        // Edits and streaming updates reach the index; deletions leave it.
        m_store->set_reply_text(r, "Early December works too.");
        QCOMPARE(m_store->search("maple").size(), std::size_t{1});
        QCOMPARE(m_store->search("december").size(), std::size_t{1});
        m_store->delete_chat(b);
        QVERIFY(m_store->search("december").empty());
        QCOMPARE(m_store->search("crème", 1).size(), std::size_t{1});
    }

    void deletedTextLeavesTheFiles()
    {
        const std::string secret = "zebraquokka";
        const ChatId keep = m_store->create_chat({"Keep", "", ""});
        m_store->append_message(keep, Role::User, "ordinary words");
        const ChatId gone = m_store->create_chat({"Secret " + secret, "", ""});
        for (int i = 0; i < 50; ++i)
            m_store->append_message(gone, Role::User, "my " + secret + " number " + std::to_string(i));
        const std::string db_path = m_dir->file("chats.db");
        m_store->checkpoint();
        QVERIFY(read_file(db_path).find(secret) != std::string::npos);

        m_store->delete_chat(gone);
        for (const char* suffix : {"", "-wal"}) {
            const std::string bytes = read_file(db_path + suffix);
            QVERIFY2(bytes.find(secret) == std::string::npos, suffix);
        }
        QCOMPARE(m_store->load_current_path(keep).size(), std::size_t{1});
    }

    void deleteBranch()
    {
        const ChatId chat = m_store->create_chat({"Prune", "", ""});
        const MessageId u = m_store->append_message(chat, Role::User, "question");
        const MessageId a1 = m_store->begin_reply(chat, u);
        const RoutingTrace trace = make_trace(10);
        m_store->finish_reply(a1, "first answer okapiword", MessageState::Complete, sample_run(), &trace);
        m_store->append_message(chat, Role::User, "follow-up under the first answer");
        const MessageId a2 = m_store->begin_reply(chat, u);
        m_store->finish_reply(a2, "second answer", MessageState::Complete, sample_run());
        m_store->select_branch(a1);
        QCOMPARE(m_store->load_current_path(chat).size(), std::size_t{3});

        // The branch on screen goes: the remaining sibling's branch is shown.
        m_store->delete_branch(a1);
        QCOMPARE(contents(m_store->load_current_path(chat)), (std::vector<std::string>{"question", "second answer"}));
        QCOMPARE(m_store->list_siblings(a2), std::vector<MessageId>{a2});
        QCOMPARE(m_store->get_chat(chat)->message_count, std::int64_t{2});
        QCOMPARE(m_store->db().query_int("SELECT count(*) FROM runs"), std::int64_t{1});
        QCOMPARE(m_store->db().query_int("SELECT count(*) FROM traces"), std::int64_t{0});
        QVERIFY(m_store->search("okapiword").empty());
        for (const char* suffix : {"", "-wal"})
            QVERIFY(read_file(m_dir->file("chats.db") + suffix).find("okapiword") == std::string::npos);

        // Last sibling gone: the parent is shown; the root gone: nothing is.
        m_store->delete_branch(a2);
        QCOMPARE(contents(m_store->load_current_path(chat)), (std::vector<std::string>{"question"}));
        m_store->delete_branch(u);
        QVERIFY(m_store->load_current_path(chat).empty());
        QVERIFY(!m_store->get_chat(chat)->current_leaf);
        QCOMPARE(error_kind([&] { m_store->delete_branch(u); }), ErrorKind::NotFound);
    }

    void longChainsDeleteWithoutRecursionLimits()
    {
        // 1,500 messages, each the parent of the next: deeper than SQLite's trigger
        // recursion limit (1000), which an ON DELETE CASCADE on parent_id would hit.
        // Rows go in through SQL in one transaction (1,500 synced commits take seconds).
        const ChatId chat = m_store->create_chat({"Long", "", ""});
        Db& db = m_store->db();
        {
            Transaction tx(db);
            Statement insert = db.prepare(
                "INSERT INTO messages (chat_id, parent_id, role, content, created_ms) VALUES (?1, nullif(?2, 0), ?3, "
                "?4, 0)");
            MessageId parent = 0;
            for (int i = 0; i < 1500; ++i) {
                insert.reset();
                insert.bind_all(chat, parent, i % 2 ? "assistant" : "user", std::string("m").append(std::to_string(i)));
                insert.run();
                parent = db.last_insert_rowid();
            }
            db.prepare("UPDATE chats SET current_leaf_id = ?2 WHERE id = ?1").bind_all(chat, parent).run();
            tx.commit();
        }
        const auto path = m_store->load_current_path(chat);
        QCOMPARE(path.size(), std::size_t{1500});
        QCOMPARE(path.front().content, std::string("m0"));
        QCOMPARE(path.back().content, std::string("m1499"));
        m_store->delete_branch(path[1].id);  // 1,499 messages in one statement
        QCOMPARE(m_store->load_current_path(chat).size(), std::size_t{1});
        m_store->delete_chat(chat);
        QCOMPARE(db.query_int("SELECT count(*) FROM messages"), std::int64_t{0});
    }

    void readOnlyStoreRefusesWrites()
    {
        const ChatId chat = m_store->create_chat({"Shared", "", ""});
        m_store->append_message(chat, Role::User, "visible to readers");
        OpenOptions options;
        options.read_only = true;
        Store reader = Store::open(m_dir->file("chats.db"), options);
        QVERIFY(reader.read_only());
        QCOMPARE(reader.load_current_path(chat).size(), std::size_t{1});
        QCOMPARE(error_kind([&] { reader.create_chat({"x", "", ""}); }), ErrorKind::ReadOnly);
        QCOMPARE(error_kind([&] { reader.db().exec("DELETE FROM chats"); }), ErrorKind::ReadOnly);
        // The writer's later commits are visible to the reader (WAL).
        m_store->append_message(chat, Role::User, "second");
        QCOMPARE(reader.load_current_path(chat).size(), std::size_t{2});
    }
};

QTEST_GUILESS_MAIN(TestStore)
#include "test_store.moc"
