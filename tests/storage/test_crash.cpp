// Crash test: crash_writer streams replies into one database and is killed with
// SIGKILL at random moments, many times. After each kill: the file passes
// integrity_check, every message the writer reported as committed is intact, and a
// reply cut off holds a prefix of what was streamed, at least as long as the last
// save the writer saw return.
#include <QTest>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <random>
#include <sstream>

#include "crash_stream.h"
#include "moelens_storage/store.h"
#include "storage_test_util.h"

using namespace moelens::storage;
using namespace moelens::storage::test;

namespace {

struct Child {
    pid_t pid = -1;
    int out = -1;  // its stdout
};

Child spawn_writer(const std::string& db, const std::string& tag)
{
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(fds[1], STDOUT_FILENO);
        ::close(fds[0]);
        ::close(fds[1]);
        const std::string exe = std::string(MOELENS_BIN_DIR) + "/crash_writer";
        ::execl(exe.c_str(), exe.c_str(), db.c_str(), tag.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(fds[1]);
    return {pid, fds[0]};
}

// Appends what the child writes to `text`: until `timeout_ms` passed or EOF, or, with
// `first_only`, until the first chunk arrived.
void read_output(int fd, std::string& text, int timeout_ms, bool first_only = false)
{
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0) return;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left)) <= 0) return;
        char buf[4096];
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) return;
        text.append(buf, static_cast<std::size_t>(n));
        if (first_only) return;
    }
}

}  // namespace

class TestCrash : public QObject {
    Q_OBJECT

private slots:
    void killedWriterLosesNothingCommitted()
    {
        TempDir dir;
        const std::string db = dir.file("chats.db");
        const unsigned seed = static_cast<unsigned>(std::random_device{}());
        qInfo("seed %u", seed);
        std::mt19937 rng(seed);
        const std::string full = crash_reply_text();

        std::map<MessageId, std::string> questions;  // every committed user message, ever
        int kills = 0, cut_replies = 0, finished_replies = 0;
        bool checked_lock = false;
        const auto start = std::chrono::steady_clock::now();
        // About 40 kills; the time cap keeps slow (sanitizer) builds within ~30 s.
        for (int iteration = 0; iteration < 40 && std::chrono::steady_clock::now() - start < std::chrono::seconds(25);
             ++iteration) {
            const std::string tag = std::to_string(iteration);
            Child child = spawn_writer(db, tag);
            std::string output;
            // Even iterations wait for the writer to be up; odd ones may kill it while
            // it opens (the recovery write of an earlier cut-off reply).
            if (iteration % 2 == 0) {
                const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
                while (output.find("ready") == std::string::npos && std::chrono::steady_clock::now() < give_up)
                    read_output(child.out, output, 1000, true);
                QVERIFY2(output.find("ready") != std::string::npos, "crash_writer did not start");
                if (!checked_lock) {
                    // A second instance while the writer runs: read-only, never a writer.
                    Store second = Store::open(db);
                    QVERIFY(second.read_only());
                    QCOMPARE(second.open_report().read_only_reason, std::optional<ErrorKind>(ErrorKind::Locked));
                    QVERIFY(!second.list_chats().empty());
                    checked_lock = true;
                }
            }
            read_output(child.out, output, std::uniform_int_distribution<int>(0, 500)(rng));
            ::kill(child.pid, SIGKILL);
            int status = 0;
            ::waitpid(child.pid, &status, 0);
            read_output(child.out, output, 1000);
            ::close(child.out);
            ++kills;
            QVERIFY2(
                WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                qPrintable(QString("crash_writer exited by itself (status %1): %2").arg(status).arg(output.c_str())));

            // What the writer saw succeed before it died.
            std::map<MessageId, std::size_t> saved;  // reply -> acknowledged length
            std::vector<MessageId> finished;
            std::istringstream lines(output);
            std::string word;
            int round = 0;
            while (lines >> word) {
                long long id = 0;
                if (word == "ready") {
                    lines >> id;
                } else if (word == "committed") {
                    lines >> id;
                    questions[id] = crash_question(tag, round++);
                } else if (word == "reply") {
                    lines >> id;
                    saved[id] = 0;
                } else if (word == "saved") {
                    std::size_t length = 0;
                    lines >> id >> length;
                    saved[id] = length;
                } else if (word == "finished") {
                    lines >> id;
                    finished.push_back(id);
                }  // a line cut mid-word by the kill is ignored
            }

            Store store = Store::open(db);
            QVERIFY(!store.read_only());
            QCOMPARE(store.db().query_text("PRAGMA integrity_check"), std::string("ok"));
            QCOMPARE(store.db().query_int("SELECT count(*) FROM pragma_foreign_key_check"), std::int64_t{0});
            for (const auto& [id, text] : questions) {
                const auto m = store.get_message(id);
                QVERIFY2(m, qPrintable(QString("committed message %1 is gone").arg(id)));
                QCOMPARE(m->content, text);
            }
            for (const auto& [id, length] : saved) {
                const auto m = store.get_message(id);
                QVERIFY2(m, qPrintable(QString("reply %1 is gone").arg(id)));
                QVERIFY2(full.compare(0, m->content.size(), m->content) == 0 && m->content.size() <= full.size(),
                         qPrintable(
                             QString("reply %1 is not a prefix of the stream: '%2'").arg(id).arg(m->content.c_str())));
                QVERIFY2(m->content.size() >= length, qPrintable(QString("reply %1 lost acknowledged text: %2 < %3")
                                                                     .arg(id)
                                                                     .arg(m->content.size())
                                                                     .arg(length)));
                if (m->state == MessageState::Complete) {
                    QCOMPARE(m->content, full);
                    const auto runs = store.list_runs(id);
                    QCOMPARE(runs.size(), std::size_t{1});
                    QCOMPARE(store.load_trace(runs[0].id)->n_tokens(), std::size_t{kCrashChunks * 4});
                    ++finished_replies;
                } else {
                    QCOMPARE(m->state, MessageState::Interrupted);
                    ++cut_replies;
                }
            }
            for (MessageId id : finished) QCOMPARE(store.get_message(id)->state, MessageState::Complete);
        }
        qInfo("%d kills, %zu committed questions, %d replies cut off, %d finished", kills, questions.size(),
              cut_replies, finished_replies);
        QVERIFY(checked_lock);
        QVERIFY(kills >= 10);
        QVERIFY(cut_replies > 0);
    }
};

QTEST_GUILESS_MAIN(TestCrash)
#include "test_crash.moc"
