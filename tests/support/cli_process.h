#pragma once
// Runs the built moelens-cli (or moelens-bench) as a script would: arguments, optional standard input,
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

// `program`: a file name in the build's bin folder (moelens-cli, moelens-bench).
inline CliRun run_program(const QString& program, const QStringList& args, const QByteArray& input = {},
                          int timeout_ms = 120000)
{
    QProcess p;
    p.start(QStringLiteral(MOELENS_BIN_DIR "/") + program, args);
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

inline CliRun run_cli(const QStringList& args, const QByteArray& input = {}, int timeout_ms = 120000)
{
    return run_program(QStringLiteral("moelens-cli"), args, input, timeout_ms);
}

}  // namespace moelens::test
