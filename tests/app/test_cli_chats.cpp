// moelens-cli export / import as a script uses them: export writes the store's JSON
// (or Markdown) for the chats asked for; importing that JSON into another database
// gives chats whose own export is the same document (branches, runs and routing
// traces kept); errors exit non-zero naming the file, import is all or nothing, and
// export leaves a damaged database untouched.
#include <QTemporaryDir>
#include <QTest>

#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "cli_process.h"
#include "moelens_storage/exchange.h"
#include "moelens_storage/store.h"

using namespace moelens::storage;
using moelens::test::CliRun;
using moelens::test::run_cli;

namespace {

std::string slurp(const QString& path)
{
    std::ifstream in(path.toStdString(), std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A chat with two answer branches (one with a routing trace), and a second chat.
std::pair<ChatId, ChatId> fill(Store& store)
{
    const ChatId a = store.create_chat({"Backup me ✓", "demo", "Be brief."});
    const MessageId u = store.append_message(a, Role::User, "Which experts fire?");
    RunRecord run;
    run.sampling_json = R"({"temperature":0})";
    run.stop_reason = "eos";
    RoutingTrace trace;
    trace.n_experts = 16;
    trace.top_k = 2;
    trace.n_prompt_tokens = 1;
    trace.layers = {1, 2};
    trace.append_token(7, "User", {1, 2, 3, 4}, {0.5f, 0.25f, 0.75f, 0.125f});
    trace.append_token(9, "Six", {5, 6, 7, 8}, {0.5f, 0.5f, 0.625f, 0.375f});
    const MessageId r1 = store.begin_reply(a, u);
    store.finish_reply(r1, "Six of them.", MessageState::Complete, run, &trace);
    const MessageId r2 = store.begin_reply(a, u);
    store.finish_reply(r2, "Stopped ans", MessageState::Stopped, run);
    const ChatId b = store.create_chat({"Other chat", "", ""});
    store.append_message(b, Role::User, "Not exported");
    return {a, b};
}

}  // namespace

class TestCliChats : public QObject {
    Q_OBJECT

private slots:
    void exportThenImportIsLossless()
    {
        QTemporaryDir dir;
        const QString db = dir.filePath("chats.sqlite3"), copy = dir.filePath("copy.sqlite3"), json = dir.filePath("a.json");
        ChatId a = 0;
        {
            Store store = Store::open(db.toStdString());
            a = fill(store).first;
        }
        const CliRun exp = run_cli({"export", "--db", db, "--chats", QString::number(a), "--out", json});
        QVERIFY2(exp.code == 0, qPrintable(exp.err));
        const std::string exported = slurp(json);
        const nlohmann::json doc = nlohmann::json::parse(exported);
        QCOMPARE(doc.at("chats").size(), std::size_t(1));

        const CliRun md = run_cli({"export", "--db", db, "--format", "markdown"});
        QVERIFY2(md.code == 0, qPrintable(md.err));
        QVERIFY(md.out.contains("Backup me ✓") && md.out.contains("Other chat") && md.out.contains("Which experts fire?"));

        { Store::open(copy.toStdString()); }  // an existing, empty database
        const CliRun imp = run_cli({"import", "--db", copy, "--in", json});
        QVERIFY2(imp.code == 0, qPrintable(imp.err));
        const std::vector<ChatId> added = nlohmann::json::parse(imp.out.toStdString()).at("imported").get<std::vector<ChatId>>();
        QCOMPARE(added.size(), std::size_t(1));
        Store store = Store::open(copy.toStdString());
        QCOMPARE(export_json(store, added), exported);
        // The trace came through with its prompt row.
        const std::vector<Message> path = store.load_current_path(added[0]);
        QVERIFY(!path.empty());
        std::optional<RoutingTrace> trace;
        for (const Message& m : store.list_messages(added[0]))
            for (const moelens::storage::Run& r : store.list_runs(m.id))
                if (auto t = store.load_trace(r.id)) trace = t;
        QVERIFY(trace);
        QCOMPARE(trace->n_prompt_tokens, 1u);
        QCOMPARE(trace->token_texts, (std::vector<std::string>{"User", "Six"}));
    }

    void errorsNameTheFileAndChangeNothing()
    {
        QTemporaryDir dir;
        const QString db = dir.filePath("chats.sqlite3"), bad = dir.filePath("bad.json");
        {
            Store store = Store::open(db.toStdString());
            fill(store);
        }
        std::ofstream(bad.toStdString()) << R"({"format": "moelens-chats", "chats": [{"title": )";
        CliRun r = run_cli({"import", "--db", db, "--in", bad});
        QCOMPARE(r.code, 1);
        QVERIFY2(r.err.contains(bad) && r.err.contains("nothing was imported"), qPrintable(r.err));
        {
            Store store = Store::open(db.toStdString());
            QCOMPARE(store.list_chats({.include_archived = true}).size(), std::size_t(2));
        }

        r = run_cli({"export", "--db", db, "--chats", "999"});
        QCOMPARE(r.code, 1);
        QVERIFY2(r.err.contains("no chat with id 999"), qPrintable(r.err));
        r = run_cli({"export", "--db", db, "--chats", "1,x"});
        QCOMPARE(r.code, 2);
        QVERIFY2(r.err.contains("'x' is not a chat id"), qPrintable(r.err));
        r = run_cli({"export", "--db", dir.filePath("missing.sqlite3")});
        QCOMPARE(r.code, 1);
        QVERIFY2(r.err.contains("missing.sqlite3: no such database"), qPrintable(r.err));

        // A damaged database: an error naming it; the file stays as it was, nothing moved aside.
        const QString junk = dir.filePath("junk.sqlite3");
        const std::string bytes(8192, 'x');
        std::ofstream(junk.toStdString(), std::ios::binary) << bytes;
        r = run_cli({"export", "--db", junk});
        QCOMPARE(r.code, 1);
        QVERIFY2(r.err.contains("junk.sqlite3"), qPrintable(r.err));
        QCOMPARE(slurp(junk), bytes);
        QCOMPARE(QDir(dir.path()).entryList({"junk*"}, QDir::Files), QStringList{"junk.sqlite3"});
    }
};

QTEST_MAIN(TestCliChats)
#include "test_cli_chats.moc"
