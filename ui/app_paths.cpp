#include "app_paths.h"

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <QStandardPaths>

AppPaths::AppPaths(const QString& overrideDir)
{
    QString dir = overrideDir;
    if (dir.isEmpty()) dir = qEnvironmentVariable("MOELENS_DATA_DIR");
    if (dir.isEmpty()) dir = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
    m_dataDir = QDir::cleanPath(QDir(dir).absolutePath());
}

QString AppPaths::logsDir() const { return m_dataDir + "/logs"; }
QString AppPaths::logFile() const { return logsDir() + "/moelens.log"; }
QString AppPaths::databaseFile() const { return m_dataDir + "/moelens.sqlite3"; }
QString AppPaths::layoutFile() const { return m_dataDir + "/layout.ini"; }
QString AppPaths::demoModelDir() const { return m_dataDir + "/models/demo"; }

namespace {

// A shipped data folder holding `marker`: $MOELENS_RESOURCES_DIR, then the installed
// share/moelens beside the program, then the source tree (for builds run in place).
QString resourceDir(const QString& name, const QString& marker)
{
    QStringList candidates;
    const QString env = qEnvironmentVariable("MOELENS_RESOURCES_DIR");
    if (!env.isEmpty()) candidates << env + "/" + name;
    candidates << QCoreApplication::applicationDirPath() + "/../share/moelens/" + name
               << QStringLiteral(MOELENS_SOURCE_RESOURCES_DIR "/") + name;
    for (const QString& dir : candidates)
        if (QFileInfo::exists(dir + "/" + marker)) return QDir::cleanPath(dir);
    return {};
}

}  // namespace

QString AppPaths::tokenizerDir() { return resourceDir(QStringLiteral("tokenizer"), QStringLiteral("tokenizer.json")); }

QString AppPaths::builtinModelDir() { return resourceDir(QStringLiteral("demo-model"), QStringLiteral("config.json")); }

bool AppPaths::ensureExists(QString* error) const
{
    // The logs folder is not required: logging falls back to the console (app/gui/logging_setup.h).
    if (!QDir().mkpath(m_dataDir)) {
        if (error) *error = QStringLiteral("cannot create the folder %1").arg(m_dataDir);
        return false;
    }
    QFileInfo info(m_dataDir);
    if (!info.isWritable()) {
        if (error) *error = QStringLiteral("the folder %1 is not writable").arg(m_dataDir);
        return false;
    }
    return true;
}
