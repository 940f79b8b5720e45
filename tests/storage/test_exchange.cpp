// Export to JSON and Markdown; JSON import is lossless (round trip) and all-or-nothing.
#include <QTest>

#include <nlohmann/json.hpp>

#include "moelens_storage/exchange.h"
#include "moelens_storage/store.h"
#include "storage_test_util.h"

using namespace moelens::storage;
using moelens::storage::test::make_trace;
using moelens::storage::test::TempDir;

namespace {

RunRecord run_with(const std::string& sampling, const std::string& error = {})
{
    RunRecord r;
    r.model_path = "/models/lite";
    r.model_fingerprint = "fp-1";
    r.sampling_json = sampling;
    r.tokens_in = 7;
    r.tokens_out = 9;
    r.prefill_tokens_per_s = 123.456789;
    r.decode_tokens_per_s = 0.1 + 0.2;  // not exactly representable: must survive as is
    r.stop_reason = error.empty() ? "eos" : "error";
    r.error = error;
    r.started_ms = 1700000000000;
    r.finished_ms = 1700000001234;
    return r;
}

// Two chats: branches, a trace, every state, flags, Unicode.
void fill(Store& store)
{
    const ChatId a = store.create_chat({"Ünïcode ✓ chat", "DeepSeek-V2-Lite", "Answer in one line."});
    const MessageId u1 = store.append_message(a, Role::User, "First question\nwith two lines and `code`");
    const MessageId r1 = store.begin_reply(a, u1);
    const RoutingTrace trace = make_trace(30, 26, 6, 64, 5, 2);
    RunRecord spread = run_with(R"({"temperature":0.7,"top_k":40})");
    // Keys in nlohmann order (sorted), so that the imported text equals it.
    spread.devices_json = R"({"device_of":[0,1],"devices":2,"dispatch_rows":[0,3,4,0]})";
    store.finish_reply(r1, "Answer one", MessageState::Complete, spread, &trace);
    const MessageId r2 = store.begin_reply(a, u1);
    store.finish_reply(r2, "Answer two", MessageState::Stopped, run_with(R"({"temperature":1.3})"));
    const MessageId r3 = store.begin_reply(a, u1);
    store.finish_reply(r3, "", MessageState::Failed, run_with("{}", "out of memory"));
    store.select_branch(r2);
    store.edit_message(u1, "First question, edited");
    store.select_branch(r2);
    store.set_chat_pinned(a, true);

    const ChatId b = store.create_chat({"Archived", "", ""});
    const MessageId s = store.append_message(b, Role::System, "system text");
    const MessageId u = store.append_message(b, Role::User, "tell me");
    (void)s;
    const MessageId r = store.begin_reply(b, u);
    store.append_reply_text(r, "partial an");
    store.set_chat_archived(b, true);
}

template <typename F>
std::string import_error(F&& f)
{
    try {
        f();
    } catch (const StorageError& e) {
        if (e.kind() != ErrorKind::InvalidInput) return std::string("wrong kind: ") + to_string(e.kind());
        return e.what();
    }
    return "no error";
}

}  // namespace

class TestExchange : public QObject {
    Q_OBJECT

private slots:
    void jsonRoundTripIsLossless()
    {
        TempDir dir;
        Store source = Store::open(dir.file("a.db"));
        fill(source);
        const std::string first = export_json(source);

        Store target = Store::open(dir.file("b.db"));
        target.create_chat({"Already here", "", ""});  // ids differ from the source's
        const auto ids = import_json(target, first);
        QCOMPARE(ids.size(), std::size_t{2});
        const std::string second = export_json(target, ids);
        // The one documented change: a reply exported mid-stream is imported interrupted.
        std::string expected = first;
        const std::string streaming = "\"state\": \"streaming\"";
        const auto at = expected.find(streaming);
        QVERIFY(at != std::string::npos);
        expected.replace(at, streaming.size(), "\"state\": \"interrupted\"");
        if (expected != second) {
            std::size_t i = 0;
            while (i < expected.size() && i < second.size() && expected[i] == second[i]) ++i;
            QFAIL(qPrintable(QString("exports differ at byte %1:\n%2\n---\n%3")
                                 .arg(i)
                                 .arg(QString::fromStdString(expected.substr(i > 80 ? i - 80 : 0, 160)))
                                 .arg(QString::fromStdString(second.substr(i > 80 ? i - 80 : 0, 160)))));
        }

        // Spot checks through the API, beyond the text comparison.
        const Chat chat = *target.get_chat(ids[0]);
        QVERIFY(chat.pinned);
        QCOMPARE(chat.title, std::string("Ünïcode ✓ chat"));
        const auto path = target.load_current_path(ids[0]);
        QCOMPARE(path.size(), std::size_t{2});
        QCOMPARE(path[1].content, std::string("Answer two"));
        QCOMPARE(path[1].sibling_index, 2);
        QCOMPARE(path[1].sibling_count, 3);
        const auto runs = target.list_runs(target.list_siblings(path[1].id)[0]);
        QCOMPARE(runs.size(), std::size_t{1});
        QVERIFY(runs[0].has_trace);
        QCOMPARE(runs[0].record.decode_tokens_per_s, 0.1 + 0.2);
        QCOMPARE(runs[0].record.devices_json, std::string(R"({"device_of":[0,1],"devices":2,"dispatch_rows":[0,3,4,0]})"));
        QVERIFY(target.list_runs(path[1].id)[0].record.devices_json.empty());  // a run on one device
        const auto trace = target.load_trace(runs[0].id);
        QVERIFY(trace->expert_ids == make_trace(30, 26, 6, 64, 5, 2).expert_ids);
        // The reply that was streaming at export time comes back interrupted.
        const auto other = target.load_current_path(ids[1]);
        QCOMPARE(other.back().state, MessageState::Interrupted);
        QCOMPARE(other.back().content, std::string("partial an"));
        QVERIFY(target.get_chat(ids[1])->archived);
    }

    void jsonHasTheDocumentedShape()
    {
        TempDir dir;
        Store store = Store::open(dir.file("a.db"));
        fill(store);
        const auto doc = nlohmann::json::parse(export_json(store));
        QCOMPARE(doc["format"].get<std::string>(), std::string("moelens-chats"));
        QCOMPARE(doc["version"].get<int>(), kExportFormatVersion);
        QCOMPARE(doc["chats"].size(), std::size_t{2});
        const auto& m = doc["chats"][0]["messages"][1];
        QCOMPARE(m["parent"].get<int>(), 1);
        QCOMPARE(m["runs"][0]["sampling"]["top_k"].get<int>(), 40);
        QVERIFY(m["runs"][0]["trace"].is_string());
    }

    void markdown()
    {
        TempDir dir;
        Store store = Store::open(dir.file("a.db"));
        fill(store);
        const auto chats = store.list_chats();
        const std::string md = export_markdown(store, {chats[0].id});
        for (const char* needle :
             {"# Ünïcode ✓ chat\n", "- Model: DeepSeek-V2-Lite\n", "## System prompt\n\nAnswer in one line.",
              "## User (version 1 of 2)\n\nFirst question\nwith two lines and `code`\n",
              "## Assistant (version 2 of 3)\n\nAnswer two\n", "· stop: eos*"}) {
            if (md.find(needle) == std::string::npos)
                QFAIL(qPrintable(QString("missing '%1' in:\n%2").arg(needle, md.c_str())));
        }
        QVERIFY(md.find("Answer one") == std::string::npos);  // other branches are not on screen
        const std::string all = export_markdown(store);
        QVERIFY(all.find("\n---\n") != std::string::npos);
        QVERIFY(all.find("*(reply cut off)*") != std::string::npos);
    }

    void badImportsChangeNothing()
    {
        TempDir dir;
        Store source = Store::open(dir.file("a.db"));
        fill(source);
        const auto good = nlohmann::json::parse(export_json(source));
        Store target = Store::open(dir.file("b.db"));

        auto with = [&](auto edit) {
            auto doc = good;
            edit(doc);
            return doc.dump();
        };
        const std::pair<std::string, std::string> cases[] = {
            {"{not json", "not valid JSON"},
            {"[]", "$: expected an object, found array"},
            {with([](auto& d) { d["format"] = "other"; }), "$.format: expected 'moelens-chats'"},
            {with([](auto& d) { d["version"] = 2; }), "$.version: format version 2 is not supported"},
            {with([](auto& d) { d["chats"][1]["messages"][1]["role"] = "bot"; }),
             "chats[1].messages[1].role: expected system, user or assistant, found 'bot'"},
            {with([](auto& d) { d["chats"][0]["messages"][1]["parent"] = 9; }),
             "chats[0].messages[1].parent: id 9 is not an earlier message of this chat"},
            {with([](auto& d) { d["chats"][0]["messages"][1]["content"] = 5; }),
             "chats[0].messages[1].content: expected a string, found number"},
            {with([](auto& d) { d["chats"][0]["messages"][2]["id"] = 1; }), "chats[0].messages[2].id: duplicate id 1"},
            {with([](auto& d) { d["chats"][0]["current_leaf"] = 77; }),
             "chats[0].current_leaf: id 77 is not a message"},
            {with([](auto& d) { d["chats"][0].erase("title"); }), "chats[0].title: missing"},
            {with([](auto& d) { d["chats"][0]["messages"][1]["runs"][0]["trace"] = "@@@@"; }),
             "chats[0].messages[1].runs[0].trace: not valid base64"},
            {with([](auto& d) {
                 std::string t = d["chats"][0]["messages"][1]["runs"][0]["trace"];
                 t[100] = t[100] == 'A' ? 'B' : 'A';
                 d["chats"][0]["messages"][1]["runs"][0]["trace"] = t;
             }),
             "checksum mismatch"},
        };
        for (const auto& [text, expected] : cases) {
            const std::string message = import_error([&] { import_json(target, text); });
            if (message.find(expected) == std::string::npos)
                QFAIL(qPrintable(QString("expected '%1', got '%2'").arg(expected.c_str(), message.c_str())));
        }
        ChatListOptions all;
        all.include_archived = true;
        QVERIFY(target.list_chats(all).empty());
        QCOMPARE(target.db().query_int("SELECT count(*) FROM messages"), std::int64_t{0});
    }
};

QTEST_GUILESS_MAIN(TestExchange)
#include "test_exchange.moc"
