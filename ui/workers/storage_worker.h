#pragma once
// The chat store on its own thread. It owns the single writable Store; the UI
// posts jobs (lambdas taking the Store, capturing values) that run there one after
// the other, in order, and send their results back with reply(), a queued call
// into the UI thread. The UI never waits for the database (hotspot's jobtracker
// shape, with the store as the one shared resource).
#include <QMetaObject>
#include <QObject>
#include <QPointer>
#include <QString>

#include <functional>
#include <memory>

#include "moelens_storage/store.h"

class StorageWorker : public QObject {
    Q_OBJECT

public:
    using Job = std::function<void(moelens::storage::Store&)>;

    explicit StorageWorker(const QString& databaseFile);
    ~StorageWorker() override;

    // Thread-safe: queues `job` to run on the storage thread. A StorageError (or any
    // exception) it throws is logged and reported through failed(); later jobs still run.
    void post(Job job);

    // Runs `f` on `receiver`'s thread (queued), unless the receiver is gone by then.
    template <typename F>
    static void reply(QObject* receiver, F f)
    {
        QPointer<QObject> guard(receiver);
        QMetaObject::invokeMethod(
            receiver, [guard, f = std::move(f)]() mutable { if (guard) f(); }, Qt::QueuedConnection);
    }

public slots:
    // Opens the database; call once the worker is on its thread.
    void open();

signals:
    void opened(const QString& message);  // empty message = all normal
    void failed(const QString& message);

private:
    void run(const Job& job);

    QString m_databaseFile;
    std::unique_ptr<moelens::storage::Store> m_store;
    QString m_openError;
};
