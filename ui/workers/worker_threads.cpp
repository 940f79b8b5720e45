#include "workers/worker_threads.h"

#include <QMetaObject>

#include "trace/answer_trace.h"
#include "workers/compare_types.h"
#include "workers/engine_types.h"
#include "workers/engine_worker.h"
#include "workers/storage_worker.h"

WorkerThreads::WorkerThreads(const QString& databaseFile)
{
    qRegisterMetaType<TokenRows>();
    qRegisterMetaType<ChatTurns>();
    qRegisterMetaType<GenerateRequest>();
    qRegisterMetaType<GenerationSummary>();
    qRegisterMetaType<AttentionCheckResult>();
    qRegisterMetaType<moelens::ModelInfo>();
    qRegisterMetaType<std::vector<int>>();
    qRegisterMetaType<CompareRequest>();
    qRegisterMetaType<CompareColumnResult>();

    m_engine = new EngineWorker;
    m_engine->moveToThread(&m_engineThread);
    QObject::connect(&m_engineThread, &QThread::finished, m_engine, &QObject::deleteLater);
    m_engineThread.setObjectName(QStringLiteral("engine"));
    m_engineThread.start();

    m_storage = new StorageWorker(databaseFile);
    m_storage->moveToThread(&m_storageThread);
    QObject::connect(&m_storageThread, &QThread::finished, m_storage, &QObject::deleteLater);
    m_storageThread.setObjectName(QStringLiteral("storage"));
    m_storageThread.start();
    QMetaObject::invokeMethod(m_storage, &StorageWorker::open, Qt::QueuedConnection);
}

WorkerThreads::~WorkerThreads()
{
    // A generation or load in progress ends within one token / one tensor.
    m_engine->requestStop();
    m_engine->requestCompareStop();
    m_engine->cancelLoad();
    m_engineThread.quit();
    m_engineThread.wait();
    // Jobs already queued (the last reply's text, its trace) must still run: the
    // quit is queued behind them instead of ending the event loop at once.
    QThread* storageThread = &m_storageThread;
    QMetaObject::invokeMethod(m_storage, [storageThread] { storageThread->quit(); }, Qt::QueuedConnection);
    m_storageThread.wait();
}
