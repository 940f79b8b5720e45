// MainWindow, part 5: compare tabs (Chat > Compare..., Saved Comparisons).
#include <QDateTime>
#include <QDockWidget>
#include <QMenu>
#include <QRandomGenerator>
#include <QStatusBar>
#include <QTabWidget>

#include "chat/chat_list.h"
#include "compare/compare_view.h"
#include "main_window.h"
#include "workers/engine_worker.h"
#include "workers/storage_worker.h"

using moelens::storage::ChatId;
using moelens::storage::ComparisonId;
using moelens::storage::Role;
using moelens::storage::Store;

QList<CompareView*> MainWindow::compareViews() const
{
    QList<CompareView*> views;
    for (int i = 1; i < m_tabs->count(); ++i)
        if (auto* v = qobject_cast<CompareView*>(m_tabs->widget(i))) views << v;
    return views;
}

void MainWindow::openCompare()
{
    if (!m_model) {
        statusBar()->showMessage(tr("Load a model to compare settings."), 5000);
        return;
    }
    CompareSource source;
    source.systemPrompt = m_settings.systemPrompt;
    // Over the chat on screen: its branch up to (and with) the last user message,
    // which every column answers anew. Without one, a new prompt.
    const std::vector<ShownMessage>& path = m_conversation->messages();
    std::size_t lastUser = path.size();
    for (std::size_t i = 0; i < path.size(); ++i)
        if (path[i].message.role == Role::User) lastUser = i;
    if (m_chat != 0 && lastUser < path.size()) {
        source.chat = m_chat;
        source.chatTitle = QString::fromStdString(m_chatInfo.title);
        source.turns = turnsBefore(path, lastUser + 1);
        source.systemPrompt = QString::fromStdString(m_chatInfo.system_prompt);
    } else if (!m_settings.systemPrompt.isEmpty()) {
        source.turns.push_back({QStringLiteral("system"), m_settings.systemPrompt});
    }
    m_storage->post([this, source](Store& s) {
        std::vector<moelens::storage::Preset> presets = s.list_presets();
        StorageWorker::reply(this, [this, source, presets] {
            if (!m_model) return;
            CompareView* view = addCompareTab(source, presets);
            emit compareOpened(view);
        });
    });
}

void MainWindow::openStoredComparison(ComparisonId id)
{
    if (!m_model) {
        showError(tr("Compare"), tr("Load a model to reopen a comparison: its columns' settings are checked against "
                                    "the model."));
        return;
    }
    m_storage->post([this, id](Store& s) {
        std::optional<moelens::storage::Comparison> comparison = s.load_comparison(id);
        std::vector<moelens::storage::Preset> presets = s.list_presets();
        std::optional<moelens::storage::Chat> chat;
        if (comparison && comparison->chat) chat = s.get_chat(*comparison->chat);
        StorageWorker::reply(this, [this, comparison, presets, chat] {
            if (!m_model) return;
            if (!comparison) {
                showError(tr("Compare"), tr("That comparison was deleted."));
                refreshComparisons();
                return;
            }
            CompareSource source;
            if (chat) {
                source.chat = chat->id;
                source.chatTitle = QString::fromStdString(chat->title);
                source.systemPrompt = QString::fromStdString(chat->system_prompt);
            }
            CompareView* view = addCompareTab(source, presets);
            view->showStored(*comparison);
            emit compareOpened(view);
        });
    });
}

CompareView* MainWindow::addCompareTab(const CompareSource& source, const std::vector<moelens::storage::Preset>& presets)
{
    ColumnSettings base;
    base.sampling = m_settings;
    // A column's seed is fixed so it can be run again to the same tokens.
    if (base.sampling.seed < 0) base.sampling.seed = QRandomGenerator::global()->bounded(1 << 30);
    auto* view = new CompareView(*m_model, m_modelDir, m_engine, m_storage, source, base, presets, m_tabs);
    connect(view, &CompareView::runningChanged, this, [this](bool running) {
        if (running) m_comparing = true;  // cleared by the engine's compareFinished
        updateInputState();
    });
    connect(view, &CompareView::traceSelected, this, [this](const AnswerTrace* trace, const QString& what) {
        showTrace(trace, what);
    });
    connect(view, &CompareView::traceUpdated, this, [this](const AnswerTrace* trace) {
        if (m_shownTrace == trace) showTrace(trace, m_shownSource);
    });
    connect(view, &CompareView::traceReleased, this, [this](const AnswerTrace* trace) {
        if (m_shownTrace == trace) showTrace(&m_replayTrace, {});
    });
    connect(view, &CompareView::branchKept, this, [this](ChatId chat, moelens::storage::MessageId) {
        statusBar()->showMessage(tr("The answer was kept in the chat as a new branch."), 5000);
        refreshChatList();
        refreshComparisons();
        if (!m_generating && !m_sending) openChat(chat);
    });
    connect(view, &CompareView::comparisonStored, this, &MainWindow::refreshComparisons);
    connect(view, &CompareView::comparisonDeleted, this, &MainWindow::refreshComparisons);
    connect(view, &CompareView::errorOccurred, this, &MainWindow::showError);
    connect(view, &CompareView::titleChanged, this, [this, view](const QString& title) {
        m_tabs->setTabText(m_tabs->indexOf(view), title);
    });
    const int index = m_tabs->addTab(view, view->title());
    m_tabs->setCurrentIndex(index);
    updateInputState();
    return view;
}

void MainWindow::closeCompareTab(int index)
{
    auto* view = qobject_cast<CompareView*>(m_tabs->widget(index));
    if (!view) return;  // the chat tab stays
    // A run still going is stopped by the view's destructor (its finished columns are already stored).
    if (view->ownsTrace(m_shownTrace)) showTrace(&m_replayTrace, {});
    m_tabs->removeTab(index);
    view->deleteLater();
}

void MainWindow::closeCompareTabs()
{
    for (int i = m_tabs->count() - 1; i > 0; --i) closeCompareTab(i);
    statusBar()->showMessage(tr("Compare tabs were closed for the new model; Chat > Saved Comparisons reopens them."),
                             8000);
}

void MainWindow::onTabChanged(int index)
{
    const bool compare = qobject_cast<CompareView*>(m_tabs->widget(index)) != nullptr;
    if (compare == m_compareLayoutShown) return;
    if (compare) {
        m_chatLayout = saveState(kLayoutVersion);
        m_chatList->hide();
        if (m_compareLayout.isEmpty() || !restoreState(m_compareLayout, kLayoutVersion))
            for (QDockWidget* dock : m_docks)
                if (dockWidgetArea(dock) == Qt::BottomDockWidgetArea) dock->hide();
    } else {
        m_compareLayout = saveState(kLayoutVersion);
        restoreState(m_chatLayout, kLayoutVersion);
        m_chatList->show();
    }
    m_compareLayoutShown = compare;
}

void MainWindow::refreshComparisons()
{
    m_storage->post([this](Store& s) {
        std::vector<moelens::storage::ComparisonSummary> list = s.list_comparisons();
        StorageWorker::reply(this, [this, list] {
            m_savedComparisons->clear();
            for (const moelens::storage::ComparisonSummary& c : list) {
                const QString when = QDateTime::fromMSecsSinceEpoch(c.created_ms).toString(QStringLiteral("yyyy-MM-dd hh:mm"));
                QAction* a = m_savedComparisons->addAction(
                    tr("%1 — %2 columns, %3").arg(QString::fromStdString(c.title).left(48)).arg(c.columns).arg(when), this,
                    [this, id = c.id] { openStoredComparison(id); });
                a->setData(QVariant::fromValue(qint64(c.id)));
            }
            if (list.empty()) m_savedComparisons->addAction(tr("(none yet)"))->setEnabled(false);
        });
    });
}
