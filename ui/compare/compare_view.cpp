#include "compare/compare_view.h"

#include <QDateTime>
#include <QHBoxLayout>
#include <QJsonArray>
#include <QJsonDocument>
#include <QLabel>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScrollArea>
#include <QShortcut>
#include <QSplitter>
#include <QTimer>
#include <QVBoxLayout>

#include <atomic>

#include "compare/compare_column.h"
#include "compare/routing_diff_view.h"
#include "workers/engine_worker.h"
#include "workers/model_fingerprint.h"
#include "workers/storage_worker.h"

using moelens::storage::ChatId;
using moelens::storage::ComparisonId;
using moelens::storage::MessageId;
using moelens::storage::Store;

namespace {

constexpr int kMinColumns = 2;
constexpr int kDrainIntervalMs = 33;  // display rate, as the chat

// Run ids are unique across compare tabs (the engine echoes them).
std::atomic<quint64> g_nextRunId{1};

QString compact(const QJsonObject& o) { return QString::fromUtf8(QJsonDocument(o).toJson(QJsonDocument::Compact)); }

QJsonArray turnsJson(const ChatTurns& turns)
{
    QJsonArray a;
    for (const ChatTurn& t : turns) a.append(QJsonObject{{"role", t.role}, {"content", t.content}});
    return a;
}

ChatTurns turnsFromJson(const std::string& json)
{
    ChatTurns turns;
    for (const QJsonValue& v : QJsonDocument::fromJson(QByteArray::fromStdString(json)).array())
        turns.push_back({v["role"].toString(), v["content"].toString()});
    return turns;
}

}  // namespace

CompareView::CompareView(const moelens::ModelInfo& model, const QString& modelDir, EngineWorker* engine,
                         StorageWorker* storage, CompareSource source, const ColumnSettings& base,
                         std::vector<moelens::storage::Preset> presets, QWidget* parent)
    : QWidget(parent),
      m_model(model),
      m_modelDir(modelDir),
      m_engine(engine),
      m_storage(storage),
      m_source(std::move(source)),
      m_presets(std::move(presets))
{
    setObjectName(QStringLiteral("compareView"));
    m_sourceLabel = new QLabel(this);
    m_sourceLabel->setObjectName(QStringLiteral("compareSource"));
    m_sourceLabel->setWordWrap(true);
    m_prompt = new QPlainTextEdit(this);
    m_prompt->setObjectName(QStringLiteral("comparePrompt"));
    m_prompt->setPlaceholderText(tr("Type the prompt every column answers (Ctrl+Return runs)"));
    m_prompt->setFixedHeight(52);
    showSourceLabel();

    m_run = new QPushButton(tr("Run"), this);
    m_run->setObjectName(QStringLiteral("compareRun"));
    m_run->setToolTip(tr("Run every column together (Ctrl+Return)"));
    m_stop = new QPushButton(tr("Stop all"), this);
    m_stop->setObjectName(QStringLiteral("compareStop"));
    m_stop->setToolTip(tr("Stop every column (Esc)"));
    m_add = new QPushButton(tr("Add column"), this);
    m_add->setObjectName(QStringLiteral("compareAdd"));
    m_add->setToolTip(tr("Add a column (Ctrl+Shift+N), up to %1").arg(kMaxCompareColumns));
    m_remove = new QPushButton(tr("Remove column"), this);
    m_remove->setObjectName(QStringLiteral("compareRemove"));
    m_remove->setToolTip(tr("Remove the last column (Ctrl+Shift+W), down to %1").arg(kMinColumns));
    m_delete = new QPushButton(tr("Delete stored"), this);
    m_delete->setObjectName(QStringLiteral("compareDelete"));
    m_delete->setToolTip(tr("Delete this stored comparison with its answers and traces"));
    m_status = new QLabel(this);
    m_status->setObjectName(QStringLiteral("compareStatus"));
    m_status->setWordWrap(true);
    connect(m_run, &QPushButton::clicked, this, &CompareView::run);
    connect(m_stop, &QPushButton::clicked, this, &CompareView::stopAll);
    connect(m_add, &QPushButton::clicked, this, &CompareView::addColumn);
    connect(m_remove, &QPushButton::clicked, this, &CompareView::removeColumn);
    connect(m_delete, &QPushButton::clicked, this, &CompareView::deleteStored);
    // Esc is the window's Stop action, which stops the comparison on screen.
    const auto shortcut = [this](const QKeySequence& key, void (CompareView::*slot)()) {
        auto* s = new QShortcut(key, this);
        s->setContext(Qt::WidgetWithChildrenShortcut);
        connect(s, &QShortcut::activated, this, slot);
    };
    shortcut(QKeySequence(Qt::CTRL | Qt::Key_Return), &CompareView::run);
    shortcut(QKeySequence(Qt::CTRL | Qt::Key_Enter), &CompareView::run);
    shortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_N), &CompareView::addColumn);
    shortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_W), &CompareView::removeColumn);

    auto* buttons = new QHBoxLayout;
    for (QPushButton* b : {m_run, m_stop, m_add, m_remove}) buttons->addWidget(b);
    buttons->addWidget(m_status, 1);
    buttons->addWidget(m_delete);

    auto* columnsWidget = new QWidget(this);
    m_columnRow = new QHBoxLayout(columnsWidget);
    m_columnRow->setContentsMargins(0, 0, 0, 0);
    auto* scroll = new QScrollArea(this);
    scroll->setObjectName(QStringLiteral("compareColumns"));
    scroll->setWidgetResizable(true);
    scroll->setWidget(columnsWidget);
    scroll->setFrameShape(QFrame::NoFrame);
    m_diff = new RoutingDiffView(this);
    auto* split = new QSplitter(Qt::Vertical, this);
    split->addWidget(scroll);
    split->addWidget(m_diff);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 1);
    split->setSizes({2000, 1000});  // scaled to the height there is: the answers get most of it

    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(6, 6, 6, 6);
    layout->addWidget(m_sourceLabel);
    layout->addWidget(m_prompt);
    layout->addLayout(buttons);
    layout->addWidget(split, 1);

    m_drainTimer = new QTimer(this);
    m_drainTimer->setInterval(kDrainIntervalMs);
    connect(m_drainTimer, &QTimer::timeout, this, &CompareView::drain);
    connect(m_engine, &EngineWorker::compareColumnFinished, this, &CompareView::onColumnFinished, Qt::QueuedConnection);
    connect(m_engine, &EngineWorker::compareFinished, this, &CompareView::onFinished, Qt::QueuedConnection);

    // Two columns to start: the settings given, and the same with a greedy twin
    // when those sample (or a temperature when they are greedy), to vary from.
    appendColumn(base);
    ColumnSettings second = base;
    second.sampling.temperature = base.sampling.temperature > 0 ? 0.0 : 0.8;
    appendColumn(second);
    updateDiff();
    updateButtons();
}

// A run still going when the tab closes is stopped; nothing is emitted from here
// (the window may be going away too), the window asks ownsTrace() before.
CompareView::~CompareView()
{
    if (m_running) m_engine->requestCompareStop();
}

bool CompareView::ownsTrace(const AnswerTrace* trace) const
{
    for (const CompareColumn* c : m_columns)
        if (&c->trace() == trace) return true;
    return false;
}

QString CompareView::title() const
{
    const QString text = m_source.chat ? m_source.chatTitle : m_prompt->toPlainText().simplified();
    return tr("Compare: %1").arg(text.isEmpty() ? tr("new prompt") : text.left(24));
}

CompareColumn* CompareView::appendColumn(const ColumnSettings& settings)
{
    auto* c = new CompareColumn(int(m_columns.size()), m_model, settings, m_presets, this);
    connect(c, &CompareColumn::stopRequested, this, [this](int i) { m_engine->requestCompareColumnStop(i); });
    connect(c, &CompareColumn::keepRequested, this, &CompareView::keep);
    connect(c, &CompareColumn::selected, this, &CompareView::selectColumn);
    connect(c, &CompareColumn::settingsChanged, this, &CompareView::updateButtons);
    m_columns.push_back(c);
    m_columnRow->addWidget(c, 1);
    return c;
}

void CompareView::addColumn()
{
    if (m_running || int(m_columns.size()) >= kMaxCompareColumns) return;
    // A new column starts as a copy of the last one: change one thing and run.
    appendColumn(m_columns.back()->settings());
    updateButtons();
}

void CompareView::setPrompt(const QString& text) { m_prompt->setPlainText(text); }

void CompareView::setColumns(const std::vector<ColumnSettings>& columns)
{
    if (m_running) return;
    const std::size_t n = std::clamp<std::size_t>(columns.size(), kMinColumns, kMaxCompareColumns);
    while (m_columns.size() < n) appendColumn(columns[m_columns.size() % columns.size()]);
    while (m_columns.size() > n) removeColumn();
    for (std::size_t i = 0; i < n && i < columns.size(); ++i) m_columns[i]->setSettings(columns[i]);
    updateButtons();
}

void CompareView::removeColumn()
{
    if (m_running || int(m_columns.size()) <= kMinColumns) return;
    CompareColumn* last = m_columns.back();
    emit traceReleased(&last->trace());
    if (m_selected == last->index()) m_selected = -1;
    m_columns.pop_back();
    delete last;
    updateDiff();
    updateButtons();
}

ChatTurns CompareView::requestTurns() const
{
    ChatTurns turns = m_source.turns;
    if (!m_source.chat) turns.push_back({QStringLiteral("user"), m_prompt->toPlainText().trimmed()});
    return turns;
}

void CompareView::setEngineBusy(bool busy)
{
    m_engineBusy = busy;
    updateButtons();
}

void CompareView::updateButtons()
{
    m_run->setEnabled(!m_running && !m_engineBusy);
    m_stop->setEnabled(m_running);
    m_add->setEnabled(!m_running && int(m_columns.size()) < kMaxCompareColumns);
    m_remove->setEnabled(!m_running && int(m_columns.size()) > kMinColumns);
    m_delete->setEnabled(!m_running && m_storedId != 0);
    m_prompt->setReadOnly(m_running);
}

void CompareView::showSourceLabel()
{
    m_prompt->setVisible(!m_source.chat);
    if (!m_source.chat) {
        m_sourceLabel->setText(tr("A new prompt, outside any chat (Keep as branch makes a chat of it):"));
        return;
    }
    const QString last = m_source.turns.empty() ? QString() : m_source.turns.back().content;
    const QString chat = m_source.chatTitle.isEmpty() ? tr("the chat") : m_source.chatTitle.toHtmlEscaped();
    m_sourceLabel->setText(tr("Answers the last message of <b>%1</b>: <i>%2</i>").arg(chat, last.left(160).toHtmlEscaped()));
}

void CompareView::setStatus(const QString& text) { m_status->setText(text); }

void CompareView::run()
{
    if (m_running || m_engineBusy) return;
    const ChatTurns turns = requestTurns();
    if (turns.empty() || turns.back().role != QLatin1String("user") || turns.back().content.trimmed().isEmpty()) {
        setStatus(tr("Type a prompt first."));
        m_prompt->setFocus();
        return;
    }
    for (CompareColumn* c : m_columns)
        if (!c->settingsError().isEmpty()) {
            setStatus(tr("Column %1 cannot run: %2").arg(c->label(), c->settingsError()));
            return;
        }

    CompareRequest request;
    request.id = g_nextRunId++;
    request.turns = turns;
    moelens::storage::NewComparison stored;
    if (m_source.chat) stored.chat = m_source.chat;
    stored.title = turns.back().content.simplified().left(80).toStdString();
    stored.context_json = QJsonDocument(turnsJson(turns)).toJson(QJsonDocument::Compact).toStdString();
    stored.model_path = m_modelDir.toStdString();
    for (CompareColumn* c : m_columns) {
        const ColumnSettings s = c->settings();
        request.columns.push_back(s.request());
        stored.columns.push_back({c->label().toStdString(), compact(s.samplingJson()).toStdString(),
                                  compact(s.moeJson()).toStdString()});
        c->beginRun();
    }
    m_runId = request.id;
    m_ranTurns = turns;
    m_running = true;
    m_storedId = 0;
    m_storing = std::make_shared<ComparisonId>(0);
    m_engine->compareRows().takeAll();  // nothing of an earlier run may leak in
    m_storage->post([this, stored, holder = m_storing](Store& s) {
        *holder = s.create_comparison(stored);
        StorageWorker::reply(this, [this, holder] {
            if (holder != m_storing) return;  // a newer run started meanwhile
            m_storedId = *holder;
            updateButtons();
            emit comparisonStored(m_storedId);
        });
    });
    EngineWorker* engine = m_engine;
    QMetaObject::invokeMethod(engine, [engine, request] { engine->compare(request); }, Qt::QueuedConnection);
    m_drainTimer->start();
    setStatus(tr("Running %n column(s) together...", nullptr, int(m_columns.size())));
    updateButtons();
    updateDiff();
    emit titleChanged(title());
    emit runningChanged(true);
}

void CompareView::stopAll()
{
    if (m_running) m_engine->requestCompareStop();
}

void CompareView::drain()
{
    const CompareRows rows = m_engine->compareRows().takeAll();
    std::vector<bool> touched(m_columns.size(), false);
    for (const CompareRow& r : rows) {
        if (r.column < 0 || std::size_t(r.column) >= m_columns.size()) continue;
        m_columns[std::size_t(r.column)]->appendRow(r.row);
        touched[std::size_t(r.column)] = true;
    }
    for (std::size_t c = 0; c < touched.size(); ++c)
        if (touched[c]) emit traceUpdated(&m_columns[c]->trace());
}

void CompareView::onColumnFinished(const CompareColumnResult& result)
{
    if (result.id != m_runId || result.column < 0 || std::size_t(result.column) >= m_columns.size()) return;
    drain();
    CompareColumn* c = m_columns[std::size_t(result.column)];
    c->finishRun(result.text, result.rows, result.generatedTokens, result.decodeSeconds, result.stopReason, result.error,
                 result.devices);
    emit traceUpdated(&c->trace());
    const moelens::storage::ComparisonResult saved = *c->result();
    std::optional<moelens::storage::RoutingTrace> trace;
    if (!c->trace().tokens().empty()) trace = c->trace().toStorage();
    m_storage->post([holder = m_storing, column = result.column, saved, trace](Store& s) {
        if (*holder) s.save_comparison_result(*holder, column, saved, trace ? &*trace : nullptr);
    });
    updateDiff();
}

void CompareView::onFinished(quint64 id)
{
    if (id != m_runId) return;
    drain();
    m_drainTimer->stop();
    m_running = false;
    int failed = 0;
    for (CompareColumn* c : m_columns)
        if (c->result() && !c->result()->error.empty()) ++failed;
    setStatus(failed ? tr("Done; %n column(s) failed (see the column).", nullptr, failed) : tr("Done."));
    updateButtons();
    updateDiff();
    // The panels show a column's routing once there is one; click another to switch.
    if (m_selected < 0) selectColumn(0);
    emit runningChanged(false);
}

void CompareView::updateDiff()
{
    std::vector<DiffColumn> columns;
    for (CompareColumn* c : m_columns) {
        DiffColumn d;
        const std::optional<ColumnSettings>& ran = c->ranWith();
        if (ran && c->hasResult() && c->result()->error.empty() && !c->isRunning()) {
            d.trace = &c->trace();
            d.defaultMoe = ran->moe.is_default(m_model.config);
            d.samplingKey = compact(ran->samplingJson());
            d.moeKey = compact(ran->moeJson());
        }
        columns.push_back(d);
    }
    m_diff->setDiff(diffRouting(columns), int(m_columns.size()));
}

void CompareView::selectColumn(int index)
{
    if (index < 0 || std::size_t(index) >= m_columns.size()) return;
    m_selected = index;
    for (CompareColumn* c : m_columns) c->setSelected(c->index() == index);
    CompareColumn* c = m_columns[std::size_t(index)];
    QStringList what;
    if (const std::optional<ColumnSettings>& ran = c->ranWith())
        for (const std::string& d : moelens::describe_moe_settings(m_model.config, ran->moe)) what << QString::fromStdString(d);
    emit traceSelected(&c->trace(), tr("Compare column %1%2").arg(c->label(), what.isEmpty() ? QString() : QStringLiteral(" (") + what.join(", ") + ")"));
}

void CompareView::showStored(const moelens::storage::Comparison& comparison)
{
    for (CompareColumn* c : m_columns) {
        emit traceReleased(&c->trace());
        delete c;
    }
    m_columns.clear();
    m_selected = -1;
    m_storedId = comparison.id;
    m_storing = std::make_shared<ComparisonId>(comparison.id);
    const ChatTurns turns = turnsFromJson(comparison.context_json);
    m_ranTurns = turns;
    m_source.chat = comparison.chat.value_or(0);
    m_source.turns = turns;
    if (!m_source.chat && !turns.empty()) {
        // The prompt is in the editor again; earlier (system) turns stay as they were.
        m_source.turns.pop_back();
        m_prompt->setPlainText(turns.back().content);
    }
    showSourceLabel();
    QStringList problems;
    for (const moelens::storage::StoredColumn& stored : comparison.columns) {
        if (int(m_columns.size()) >= kMaxCompareColumns) break;
        ColumnSettings s;
        try {
            s = ColumnSettings::fromJson(QJsonDocument::fromJson(QByteArray::fromStdString(stored.settings.sampling_json)).object(),
                                         QJsonDocument::fromJson(QByteArray::fromStdString(stored.settings.moe_json)).object());
        } catch (const std::exception& e) {
            problems << tr("column %1: %2").arg(QString::fromStdString(stored.settings.label), QString::fromStdString(e.what()));
        }
        CompareColumn* c = appendColumn(s);
        c->showStored(stored, stored.result ? int(stored.result->tokens_in) : 0);
    }
    while (int(m_columns.size()) < kMinColumns) appendColumn(ColumnSettings{});
    setStatus(problems.isEmpty() ? tr("Stored %1; Run runs it again as a new comparison.")
                                       .arg(QDateTime::fromMSecsSinceEpoch(comparison.created_ms).toString("yyyy-MM-dd hh:mm"))
                                 : problems.join("; "));
    updateDiff();
    updateButtons();
    emit titleChanged(title());
}
