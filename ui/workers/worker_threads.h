#pragma once
// Builds the engine and storage workers and the threads they live on; stopping
// them is the destructor's job (a generation in progress is asked to stop first).
// main() and the GUI tests build the app the same way through this class.
#include <QString>
#include <QThread>

class EngineWorker;
class StorageWorker;

class WorkerThreads {
public:
    explicit WorkerThreads(const QString& databaseFile);
    ~WorkerThreads();
    WorkerThreads(const WorkerThreads&) = delete;
    WorkerThreads& operator=(const WorkerThreads&) = delete;

    EngineWorker* engine() const { return m_engine; }
    StorageWorker* storage() const { return m_storage; }

private:
    QThread m_engineThread;
    QThread m_storageThread;
    EngineWorker* m_engine = nullptr;
    StorageWorker* m_storage = nullptr;
};
