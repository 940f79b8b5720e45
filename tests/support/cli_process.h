#pragma once
// Runs the built moelens-cli as a script would: arguments, optional standard input,
// the exit code and both output streams. For the tests of its command-line contracts.
#include <QByteArray>
#include <QProcess>
#include <QString>
#include <QStringList>

namespace moelens::test {

struct CliRun {
    int code = -1;  // -1: it crashed or did not finish in time
    QString out;
    QString err;
};

inline CliRun run_cli(const QStringList& args, const QByteArray& input = {}, int timeout_ms = 120000)
{
    QProcess p;
    p.start(QStringLiteral(MOELENS_BIN_DIR "/moelens-cli"), args);
    if (!input.isEmpty()) p.write(input);
    p.closeWriteChannel();
    if (!p.waitForFinished(timeout_ms)) {
        p.kill();
        p.waitForFinished();
        return {};
    }
    return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, QString::fromUtf8(p.readAllStandardOutput()),
            QString::fromUtf8(p.readAllStandardError())};
}

}  // namespace moelens::test
