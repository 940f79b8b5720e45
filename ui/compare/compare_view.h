#pragma once
// The compare tab: one prompt (the current chat's context, or a new prompt) answered
// under 2..8 settings sets side by side, run together in one batch on the engine
// thread, with "how the routing differs" under the answers. Every run is stored as a
// comparison (columns saved as they finish) and can be reopened and run again.
// Talks to the workers only through queued calls, like the main window.
#include <QWidget>

#include <memory>
#include <vector>

#include "compare/column_settings.h"
#include "moelens/model.h"
#include "moelens_storage/records.h"
#include "workers/compare_types.h"

class CompareColumn;
class EngineWorker;
class QHBoxLayout;
class QLabel;
class QPlainTextEdit;
class QPushButton;
class QTimer;
class RoutingDiffView;
class StorageWorker;

// What a comparison answers.
struct CompareSource {
    moelens::storage::ChatId chat = 0;  // 0: a new prompt, typed in the tab
    QString chatTitle;
    ChatTurns turns;  // the chat up to and including its last user message; for a new prompt, its system turn if any
    QString systemPrompt;  // for a chat made by "Keep as branch" from a new prompt
};

class CompareView : public QWidget {
    Q_OBJECT

public:
    CompareView(const moelens::ModelInfo& model, const QString& modelDir, EngineWorker* engine, StorageWorker* storage,
                CompareSource source, const ColumnSettings& base, std::vector<moelens::storage::Preset> presets,
                QWidget* parent = nullptr);
    ~CompareView() override;

    // A stored comparison, with its columns' settings, results and traces.
    void showStored(const moelens::storage::Comparison& comparison);
    // Scripted use (--compare, tests): the prompt of a new-prompt tab, and the columns
    // (2..8; replaces those on screen, not while running).
    void setPrompt(const QString& text);
    void setColumns(const std::vector<ColumnSettings>& columns);

    int columnCount() const { return int(m_columns.size()); }
    CompareColumn* column(int i) const { return m_columns.at(std::size_t(i)); }
    RoutingDiffView* diffView() const { return m_diff; }
    bool isRunning() const { return m_running; }
    moelens::storage::ComparisonId storedId() const { return m_storedId; }
    QString title() const;
    bool ownsTrace(const AnswerTrace* trace) const;

public slots:
    void run();
    void stopAll();
    void addColumn();
    void removeColumn();
    // Another run holds the engine (a chat answer or another comparison): Run waits.
    void setEngineBusy(bool busy);

signals:
    void runningChanged(bool running);
    void traceSelected(const AnswerTrace* trace, const QString& source);
    void traceUpdated(const AnswerTrace* trace);  // rows were added or replaced
    void traceReleased(const AnswerTrace* trace); // its column is going away
    void branchKept(moelens::storage::ChatId chat, moelens::storage::MessageId reply);
    void comparisonStored(moelens::storage::ComparisonId id);
    void comparisonDeleted(moelens::storage::ComparisonId id);
    void titleChanged(const QString& title);
    void errorOccurred(const QString& title, const QString& message);

private:
    CompareColumn* appendColumn(const ColumnSettings& settings);
    ChatTurns requestTurns() const;
    void drain();
    void onColumnFinished(const CompareColumnResult& result);
    void onFinished(quint64 id);
    void updateDiff();
    void updateButtons();
    void selectColumn(int index);
    void keep(int index);
    void deleteStored();
    void setStatus(const QString& text);
    void showSourceLabel();

    moelens::ModelInfo m_model;
    QString m_modelDir;
    EngineWorker* m_engine;
    StorageWorker* m_storage;
    CompareSource m_source;
    std::vector<moelens::storage::Preset> m_presets;
    std::vector<CompareColumn*> m_columns;

    QLabel* m_sourceLabel = nullptr;
    QPlainTextEdit* m_prompt = nullptr;
    QPushButton* m_run = nullptr;
    QPushButton* m_stop = nullptr;
    QPushButton* m_add = nullptr;
    QPushButton* m_remove = nullptr;
    QPushButton* m_delete = nullptr;
    QLabel* m_status = nullptr;
    QHBoxLayout* m_columnRow = nullptr;
    RoutingDiffView* m_diff = nullptr;
    QTimer* m_drainTimer = nullptr;

    ChatTurns m_ranTurns;  // what the shown results answer
    bool m_running = false;
    bool m_engineBusy = false;
    bool m_keeping = false;
    quint64 m_runId = 0;
    int m_selected = -1;
    moelens::storage::ComparisonId m_storedId = 0;
    // Set on the storage thread by the job that stores a run, read by the jobs after
    // it (they run in order), so results are saved without waiting for a reply.
    std::shared_ptr<moelens::storage::ComparisonId> m_storing;
};
