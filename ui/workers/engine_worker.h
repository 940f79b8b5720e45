#pragma once
// The engine on its own thread (gpt4all's ChatLLM shape). The UI talks to it only
// through queued slot calls and gets answers as queued signals carrying values;
// tokens go through the TokenQueue the UI drains at display rate. Stop and load
// cancellation are atomic flags the engine checks once per token / per tensor, so
// they are plain thread-safe calls, not slots waiting in the queue behind the work.
#include <QObject>
#include <QString>

#include <array>
#include <atomic>
#include <memory>
#include <optional>

#include "workers/compare_types.h"
#include "workers/engine_types.h"
#include "workers/token_queue.h"

class ChatCodec;

class EngineWorker : public QObject {
    Q_OBJECT

public:
    EngineWorker();
    ~EngineWorker() override;

    // Thread-safe: called from the UI thread while the worker is busy.
    void requestStop() { m_stop.store(true); }
    void cancelLoad() { m_cancelLoad.store(true); }
    TokenQueue& tokens() { return m_tokens; }
    // A comparison: Stop all, or one column alone (its own flag, checked per token).
    void requestCompareStop() { m_compareStop.store(true); }
    void requestCompareColumnStop(int column)
    {
        if (column >= 0 && column < kMaxCompareColumns) m_columnStop[std::size_t(column)].store(true);
    }
    CompareQueue& compareRows() { return m_compareRows; }

public slots:
    // Writes the built-in demo model into `dir` unless it is already there, then loads it.
    void prepareDemoModel(const QString& dir, const QString& tokenizerDir);
    // Checks a model folder without loading it; answers inspected() or inspectFailed().
    void inspectModel(const QString& dir);
    void loadModel(const QString& dir);
    void setThreads(int threads) { m_threads = threads; }
    void setContextTokens(int tokens) { m_contextTokens = tokens; }
    // Routed experts over virtual devices (GenerationSettings::virtualDevices: -1 =
    // the model's groups) with `memoryMiB` each (0 = no limit); applies at once.
    // Answers devicesApplied().
    void setDevices(int virtualDevices, double memoryMiB);
    void generate(const GenerateRequest& request);
    // Reruns `turns` + the answer's tokens through the absorbed and the naive MLA paths.
    void checkAttention(const ChatTurns& turns, const std::vector<int>& answerTokens);
    // Runs every column of `request` together in one batch over the prompt tokenized
    // once (engine_worker_compare.cpp); rows go to compareRows(), each column's result
    // to compareColumnFinished() as it ends, then compareFinished().
    void compare(const CompareRequest& request);

signals:
    void demoModelWritten(const QString& dir);
    void inspected(const moelens::ModelInfo& info);
    void inspectFailed(const QString& dir, const QString& message);
    void loadStarted(const QString& dir);
    void loadProgress(qint64 done, qint64 total, const QString& stage);
    void modelLoaded(const moelens::ModelInfo& info);
    void loadFailed(const QString& dir, const QString& message);
    void loadCancelled(const QString& dir);
    void generationStarted(quint64 id);
    void generationFinished(const GenerationSummary& summary);
    void attentionChecked(const AttentionCheckResult& result);
    void compareStarted(quint64 id, int promptTokens);
    void compareColumnFinished(const CompareColumnResult& result);
    void compareFinished(quint64 id);
    // The devices the session now runs on (1 = no virtual devices); `problem` says
    // why the ones asked for could not be used, if so.
    void devicesApplied(int devices, const QString& problem);

private:
    std::shared_ptr<const moelens::Model> m_model;
    std::unique_ptr<moelens::Session> m_session;
    std::unique_ptr<ChatCodec> m_codec;
    TokenQueue m_tokens;
    CompareQueue m_compareRows;
    std::atomic<bool> m_compareStop{false};
    std::array<std::atomic<bool>, kMaxCompareColumns> m_columnStop{};
    std::atomic<bool> m_stop{false};
    std::atomic<bool> m_cancelLoad{false};
    int m_threads = 0;
    int m_contextTokens = 4096;

    int m_virtualDevices = -1;
    double m_deviceMemoryMiB = 0;

    int contextLimit() const;
    // A fresh session for the loaded model with the device settings; falls back to
    // one device (and says why) when those cannot be used.
    void makeSession();
    // The session's placement with `traffic`, routed with device limit `deviceLimit`
    // (-1: the model's).
    std::optional<DeviceTraffic> deviceTraffic(const moelens::ExpertTraffic* traffic, int deviceLimit = -1) const;
};
