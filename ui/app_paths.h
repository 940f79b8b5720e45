#pragma once
// Where MoE Lens keeps a user's things. One profile folder holds the database, the
// logs, the window layout and the built-in demo model; `--data-dir` (or the
// MOELENS_DATA_DIR environment variable) points it elsewhere, which tests use to
// run against a fresh, isolated profile.
#include <QString>

class AppPaths {
public:
    // Empty override = the platform's app-data folder (QStandardPaths::AppDataLocation).
    explicit AppPaths(const QString& overrideDir = {});

    QString dataDir() const { return m_dataDir; }
    QString logsDir() const;
    QString logFile() const;
    QString databaseFile() const;
    QString layoutFile() const;  // window geometry and dock layout (QSettings, INI)
    QString demoModelDir() const;  // the random-weight demo, written on demand

    // The DeepSeek tokenizer files the demo model is built with: $MOELENS_RESOURCES_DIR/
    // tokenizer, else <prefix>/share/moelens/tokenizer next to an installed program,
    // else the source tree's resources/tokenizer (build tree). Empty if none exists.
    static QString tokenizerDir();
    // The trained demo model shipped with the program (read-only); empty if missing.
    static QString builtinModelDir();

    // Creates the profile folders; returns false (and says why in *error) when the
    // folder cannot be created or written.
    bool ensureExists(QString* error) const;

private:
    QString m_dataDir;
};
