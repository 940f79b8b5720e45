#include "workers/storage_worker.h"

#include <spdlog/spdlog.h>

StorageWorker::StorageWorker(const QString& databaseFile) : m_databaseFile(databaseFile) {}

StorageWorker::~StorageWorker() = default;

void StorageWorker::open()
{
    try {
        m_store = std::make_unique<moelens::storage::Store>(moelens::storage::Store::open(m_databaseFile.toStdString()));
        const moelens::storage::OpenReport& report = m_store->open_report();
        if (!report.message.empty()) spdlog::warn("chat database: {}", report.message);
        spdlog::info("chat database {} open{}", m_databaseFile.toStdString(), report.read_only ? " (read-only)" : "");
        emit opened(QString::fromStdString(report.message));
    } catch (const std::exception& e) {
        m_openError = QString::fromStdString(e.what());
        spdlog::error("cannot open the chat database {}: {}", m_databaseFile.toStdString(), e.what());
        emit failed(tr("The chat database could not be opened: %1").arg(m_openError));
    }
}

void StorageWorker::post(Job job)
{
    QMetaObject::invokeMethod(this, [this, job = std::move(job)] { run(job); }, Qt::QueuedConnection);
}

void StorageWorker::run(const Job& job)
{
    if (!m_store) {
        emit failed(tr("The chat database is not open: %1").arg(m_openError));
        return;
    }
    try {
        job(*m_store);
    } catch (const std::exception& e) {
        spdlog::error("chat database: {}", e.what());
        emit failed(QString::fromStdString(e.what()));
    }
}
