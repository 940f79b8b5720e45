// MainWindow, part 4: File > Export and Import. Chats go out as Markdown (to read)
// or JSON (to back up or move; it keeps branches, runs and routing traces), and
// JSON comes back in as new chats. The store's exchange functions do the work on
// the storage thread, which also reads and writes the file: the UI only asks for
// the path. An export replaces its file only once it is complete (QSaveFile).
#include <QFileDialog>
#include <QFileInfo>
#include <QSaveFile>
#include <QStandardPaths>
#include <QStatusBar>

#include <string>

#include "main_window.h"
#include "moelens_storage/exchange.h"
#include "workers/storage_worker.h"

using moelens::storage::ChatId;
using moelens::storage::Store;

namespace {

bool isMarkdown(const QString& path)
{
    const QString suffix = QFileInfo(path).suffix().toLower();
    return suffix == QLatin1String("md") || suffix == QLatin1String("markdown");
}

QString startDir(const QString& last)
{
    return last.isEmpty() ? QStandardPaths::writableLocation(QStandardPaths::DocumentsLocation) : last;
}

}  // namespace

void MainWindow::exportChatsDialog(ChatId chat, const QString& title)
{
    QString name = chat != 0 ? title : tr("moelens-chats");
    for (QChar& c : name)
        if (!c.isLetterOrNumber() && c != QLatin1Char('-')) c = QLatin1Char('_');
    const QString markdownFilter = tr("Markdown, to read (*.md)");
    QString filter;
    QString path = QFileDialog::getSaveFileName(this, chat != 0 ? tr("Export Chat") : tr("Export All Chats"),
                                                startDir(m_exchangeDir) + QLatin1Char('/') + name.left(60) + ".md",
                                                markdownFilter + ";;" + tr("JSON, to import again (*.json)"), &filter);
    if (path.isEmpty()) return;
    // The format follows the file's extension; a name typed without one gets the chosen filter's.
    if (QFileInfo(path).suffix().isEmpty()) path += filter == markdownFilter ? ".md" : ".json";
    exportChats(path, chat != 0 ? std::vector<ChatId>{chat} : std::vector<ChatId>{});
}

void MainWindow::exportChats(const QString& path, const std::vector<ChatId>& chats)
{
    m_exchangeDir = QFileInfo(path).absolutePath();
    m_storage->post([this, path, chats, markdown = isMarkdown(path)](Store& s) {
        QString error;
        try {
            const std::string text = markdown ? moelens::storage::export_markdown(s, chats)
                                              : moelens::storage::export_json(s, chats);
            QSaveFile file(path);
            if (!file.open(QIODevice::WriteOnly) || file.write(text.data(), qint64(text.size())) != qint64(text.size()) ||
                !file.commit())
                error = file.errorString();
        } catch (const std::exception& e) {
            error = QString::fromStdString(e.what());
        }
        const int count = chats.empty() ? int(s.list_chats({.include_archived = true}).size()) : int(chats.size());
        StorageWorker::reply(this, [this, path, error, count] {
            if (!error.isEmpty()) {
                showError(tr("Export failed"), tr("%1: %2").arg(path, error));
                return;
            }
            statusBar()->showMessage(tr("Exported %n chat(s) to %1.", nullptr, count).arg(path), 8000);
            emit chatsExported(path, count);
        });
    });
}

void MainWindow::importChatsDialog()
{
    const QString path = QFileDialog::getOpenFileName(this, tr("Import Chats"), startDir(m_exchangeDir),
                                                      tr("MoE Lens JSON export (*.json);;All files (*)"));
    if (!path.isEmpty()) importChats(path);
}

void MainWindow::importChats(const QString& path)
{
    m_exchangeDir = QFileInfo(path).absolutePath();
    m_storage->post([this, path](Store& s) {
        QString error;
        std::vector<ChatId> added;
        QFile file(path);
        if (!file.open(QIODevice::ReadOnly)) {
            error = file.errorString();
        } else {
            const QByteArray bytes = file.readAll();
            try {
                added = moelens::storage::import_json(s, std::string_view(bytes.constData(), std::size_t(bytes.size())));
            } catch (const std::exception& e) {
                error = QString::fromStdString(e.what());
            }
        }
        StorageWorker::reply(this, [this, path, error, added] {
            if (!error.isEmpty()) {
                showError(tr("Import failed"), tr("%1: %2 Nothing was imported.").arg(path, error));
                return;
            }
            statusBar()->showMessage(tr("Imported %n chat(s) from %1.", nullptr, int(added.size())).arg(path), 8000);
            refreshChatList();
            if (!added.empty() && !m_generating && !m_sending) openChat(added.front());
            emit chatsImported(path, int(added.size()));
        });
    });
}
