// Stored comparisons: create with ordered columns, save results and traces, list
// (all, per chat), load back after the file is closed and reopened, delete (also with
// its chat), and bad input refused without storing anything.
#include <QTest>

#include "moelens_storage/store.h"
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

NewComparison three_columns(std::optional<ChatId> chat)
{
    NewComparison c;
    c.chat = chat;
    c.title = "What is a list?";
    c.context_json = R"([{"role":"user","content":"What is a list?"}])";
    c.model_path = "/models/demo";
    c.columns = {{"A", R"({"temperature":0})", "{}"},
                 {"B", R"({"temperature":0.8,"seed":7})", "{}"},
                 {"C", R"({"temperature":0})", R"({"experts_per_token":2})"}};
    return c;
}

ComparisonResult result_of(const std::string& text, std::int64_t out)
{
    ComparisonResult r;
    r.text = text;
    r.stop_reason = "max_new_tokens";
    r.tokens_in = 9;
    r.tokens_out = out;
    r.decode_tokens_per_s = 123.5;
    return r;
}

}  // namespace

class TestComparisons : public QObject {
    Q_OBJECT

private slots:
    void survivesReopen()
    {
        TempDir dir;
        const std::string path = dir.file("chats.db");
        const RoutingTrace trace = make_trace(20, 4, 2, 16, 3, 2);
        ComparisonId id = 0;
        ChatId chat = 0;
        {
            Store s = Store::open(path);
            chat = s.create_chat({"Lists", "", ""});
            id = s.create_comparison(three_columns(chat));
            s.save_comparison_result(id, 0, result_of("A list is", 4), &trace);
            s.save_comparison_result(id, 2, result_of("The list", 3));
            // Saving again replaces (a column that is run once more).
            s.save_comparison_result(id, 2, result_of("The list holds", 5), &trace);
        }
        Store s = Store::open(path);
        const std::optional<Comparison> c = s.load_comparison(id);
        QVERIFY(c);
        QCOMPARE(c->chat, std::optional<ChatId>(chat));
        QCOMPARE(c->title, std::string("What is a list?"));
        QCOMPARE(c->model_path, std::string("/models/demo"));
        QVERIFY(c->context_json.find("What is a list?") != std::string::npos);
        QVERIFY(c->created_ms > 0);
        QCOMPARE(c->columns.size(), std::size_t{3});
        QCOMPARE(c->columns[1].settings.label, std::string("B"));
        QCOMPARE(c->columns[1].settings.sampling_json, std::string(R"({"temperature":0.8,"seed":7})"));
        QCOMPARE(c->columns[2].settings.moe_json, std::string(R"({"experts_per_token":2})"));
        QVERIFY(c->columns[0].result && c->columns[2].result);
        QVERIFY(!c->columns[1].result && !c->columns[1].trace);
        QCOMPARE(c->columns[0].result->text, std::string("A list is"));
        QCOMPARE(c->columns[2].result->text, std::string("The list holds"));
        QCOMPARE(c->columns[2].result->tokens_out, std::int64_t{5});
        QCOMPARE(c->columns[2].result->tokens_in, std::int64_t{9});
        QCOMPARE(c->columns[2].result->decode_tokens_per_s, 123.5);
        QCOMPARE(c->columns[2].result->stop_reason, std::string("max_new_tokens"));
        QVERIFY(c->columns[2].result->finished_ms > 0);
        QVERIFY(c->columns[0].trace);
        QCOMPARE(c->columns[0].trace->expert_ids, trace.expert_ids);
        QCOMPARE(c->columns[0].trace->token_ids, trace.token_ids);
        QCOMPARE(c->columns[0].trace->n_prompt_tokens, trace.n_prompt_tokens);

        const std::vector<ComparisonSummary> all = s.list_comparisons();
        QCOMPARE(all.size(), std::size_t{1});
        QCOMPARE(all[0].columns, 3);
        QCOMPARE(all[0].finished_columns, 2);
        QCOMPARE(s.list_comparisons(chat).size(), std::size_t{1});
        QCOMPARE(s.list_comparisons(chat + 1).size(), std::size_t{0});
    }

    void listsNewestFirstAndPerChat()
    {
        TempDir dir;
        Store s = Store::open(dir.file("chats.db"));
        const ChatId chat = s.create_chat({"Lists", "", ""});
        const ComparisonId loose = s.create_comparison(three_columns(std::nullopt));
        const ComparisonId inChat = s.create_comparison(three_columns(chat));
        const std::vector<ComparisonSummary> all = s.list_comparisons();
        QCOMPARE(all.size(), std::size_t{2});
        QCOMPARE(all[0].id, inChat);
        QCOMPARE(all[1].id, loose);
        QVERIFY(!all[1].chat);
        QCOMPARE(s.list_comparisons(chat).size(), std::size_t{1});
        // A prompt's comparison joins the chat its kept answer went to.
        s.set_comparison_chat(loose, chat);
        QCOMPARE(s.list_comparisons(chat).size(), std::size_t{2});
        QCOMPARE(error_kind([&] { s.set_comparison_chat(loose, chat + 5); }), ErrorKind::NotFound);
    }

    void deleteRemovesEverything()
    {
        TempDir dir;
        const std::string path = dir.file("chats.db");
        Store s = Store::open(path);
        const ChatId chat = s.create_chat({"Lists", "", ""});
        const ComparisonId a = s.create_comparison(three_columns(chat));
        const ComparisonId b = s.create_comparison(three_columns(std::nullopt));
        s.save_comparison_result(a, 0, result_of("quokka-answer-words", 4));
        s.delete_comparison(b);
        QVERIFY(!s.load_comparison(b));
        QCOMPARE(s.db().query_int("SELECT count(*) FROM comparison_columns WHERE comparison_id = " + std::to_string(b)),
                 std::int64_t{0});
        QCOMPARE(error_kind([&] { s.delete_comparison(b); }), ErrorKind::NotFound);
        // A chat's comparisons go with it, and their text leaves the files.
        s.delete_chat(chat);
        QVERIFY(!s.load_comparison(a));
        QCOMPARE(s.db().query_int("SELECT count(*) FROM comparison_columns"), std::int64_t{0});
        QVERIFY(read_file(path).find("quokka-answer-words") == std::string::npos);
        QVERIFY(read_file(path + "-wal").find("quokka-answer-words") == std::string::npos);
    }

    void badInputIsRefused()
    {
        TempDir dir;
        Store s = Store::open(dir.file("chats.db"));
        NewComparison bad = three_columns(std::nullopt);
        bad.columns[1].moe_json = "[1, 2]";
        QCOMPARE(error_kind([&] { s.create_comparison(bad); }), ErrorKind::InvalidInput);
        bad = three_columns(std::nullopt);
        bad.columns[0].sampling_json = "{not json";
        QCOMPARE(error_kind([&] { s.create_comparison(bad); }), ErrorKind::InvalidInput);
        QCOMPARE(error_kind([&] { s.create_comparison(three_columns(99)); }), ErrorKind::NotFound);
        // Nothing of the refused ones was stored.
        QCOMPARE(s.list_comparisons().size(), std::size_t{0});
        QCOMPARE(s.db().query_int("SELECT count(*) FROM comparison_columns"), std::int64_t{0});
        const ComparisonId id = s.create_comparison(three_columns(std::nullopt));
        QCOMPARE(error_kind([&] { s.save_comparison_result(id, 3, result_of("x", 1)); }), ErrorKind::NotFound);
        // A damaged trace is reported by name, not returned as wrong data.
        s.save_comparison_result(id, 1, result_of("x", 1), nullptr);
        s.db().exec("UPDATE comparison_columns SET trace = x'00010203' WHERE position = 1");
        try {
            s.load_comparison(id);
            QFAIL("no error");
        } catch (const StorageError& e) {
            QCOMPARE(e.kind(), ErrorKind::TraceFormat);
            QVERIFY2(std::string(e.what()).find("column 1") != std::string::npos, e.what());
        }
    }

    void readOnlyStoreRefusesWrites()
    {
        TempDir dir;
        const std::string path = dir.file("chats.db");
        { Store s = Store::open(path); }
        OpenOptions ro;
        ro.read_only = true;
        Store s = Store::open(path, ro);
        QCOMPARE(error_kind([&] { s.create_comparison(three_columns(std::nullopt)); }), ErrorKind::ReadOnly);
        QCOMPARE(s.list_comparisons().size(), std::size_t{0});
    }
};

QTEST_GUILESS_MAIN(TestComparisons)
#include "test_comparisons.moc"
