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

QString AppPaths::tokenizerDir()
{
    QStringList candidates;
    const QString env = qEnvironmentVariable("MOELENS_RESOURCES_DIR");
    if (!env.isEmpty()) candidates << env + "/tokenizer";
    candidates << QCoreApplication::applicationDirPath() + "/../share/moelens/tokenizer"
               << QStringLiteral(MOELENS_SOURCE_RESOURCES_DIR "/tokenizer");
    for (const QString& dir : candidates)
        if (QFileInfo::exists(dir + "/tokenizer.json")) return QDir::cleanPath(dir);
    return {};
}

bool AppPaths::ensureExists(QString* error) const
{
    for (const QString& d : {m_dataDir, logsDir()}) {
        if (!QDir().mkpath(d)) {
            if (error) *error = QStringLiteral("cannot create the folder %1").arg(d);
            return false;
        }
    }
    QFileInfo info(m_dataDir);
    if (!info.isWritable()) {
        if (error) *error = QStringLiteral("the folder %1 is not writable").arg(m_dataDir);
        return false;
    }
    return true;
}
