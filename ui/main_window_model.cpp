// MainWindow, part 3: models, the traces the docks show, and the attention check.
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QJsonArray>
#include <QLabel>
#include <QProgressBar>
#include <QToolButton>
#include <QJsonDocument>
#include <QMenu>
#include <QMessageBox>
#include <QStatusBar>

#include <spdlog/spdlog.h>

#include "chat/message_widget.h"
#include "dialogs/model_check_dialog.h"
#include "main_window.h"
#include "viz/devices_panel.h"
#include "viz/expert_load.h"
#include "viz/latent_cache.h"
#include "viz/routing_map.h"
#include "viz/viz_common.h"
#include "workers/engine_worker.h"
#include "workers/storage_worker.h"

using moelens::storage::MessageId;
using moelens::storage::Role;
using moelens::storage::Store;

namespace {

constexpr int kMaxRecentModels = 8;

// The stored trace of an answer's latest run that has one, with the shape the views
// need: from the loaded model when the run used it, else from the run's model folder
// (config and headers only), else only what the trace itself records.
std::optional<AnswerTrace> loadAnswerTrace(Store& s, MessageId id, const QString& loadedDir,
                                           const std::optional<TraceShape>& loadedShape)
{
    const std::vector<moelens::storage::Run> runs = s.list_runs(id);
    for (auto it = runs.rbegin(); it != runs.rend(); ++it) {
        if (!it->has_trace) continue;
        std::optional<moelens::storage::RoutingTrace> trace = s.load_trace(it->id);
        if (!trace) continue;
        TraceShape shape;
        const QString modelPath = QString::fromStdString(it->record.model_path);
        if (loadedShape && QDir(modelPath) == QDir(loadedDir)) {
            shape = *loadedShape;
        } else {
            try {
                shape = TraceShape::fromInfo(moelens::inspect_model(it->record.model_path));
            } catch (const std::exception& e) {
                spdlog::info("replaying a trace without its model ({}): {}", it->record.model_path, e.what());
            }
        }
        AnswerTrace answer = AnswerTrace::fromStorage(*trace, shape, int(it->record.tokens_in));
        if (!it->record.devices_json.empty()) {
            QString problem;
            answer.setDevices(DeviceTraffic::fromJson(QByteArray::fromStdString(it->record.devices_json), &problem));
            if (!problem.isEmpty()) spdlog::warn("the stored device traffic of run {} is unreadable: {}", it->id, problem.toStdString());
        }
        return answer;
    }
    return std::nullopt;
}

}  // namespace

void MainWindow::startupModel(const QString& lastModel)
{
    if (m_options.randomDemoOnStart) {
        loadDemoModel();
    } else if (!m_options.modelDir.isEmpty()) {
        loadModel(m_options.modelDir);
    } else if (!lastModel.isEmpty() && QDir(lastModel) == QDir(m_paths.demoModelDir())) {
        loadDemoModel();  // the user chose the random-weight demo last time
    } else if (!lastModel.isEmpty() && QFileInfo::exists(lastModel + QStringLiteral("/config.json"))) {
        loadModel(lastModel);
    } else if (!AppPaths::builtinModelDir().isEmpty()) {
        loadBuiltinModel();
    } else {
        loadDemoModel();
    }
}

void MainWindow::loadBuiltinModel()
{
    if (m_generating || m_comparing || m_loading) return;
    const QString dir = AppPaths::builtinModelDir();
    if (dir.isEmpty()) {
        showError(tr("The built-in model was not found"),
                  tr("Its files (demo-model/config.json) were not found next to the program. Reinstall MoE Lens, "
                     "or point MOELENS_RESOURCES_DIR at a folder holding demo-model/."));
        return;
    }
    loadModel(dir);
}

void MainWindow::loadDemoModel()
{
    if (m_generating || m_comparing || m_loading) return;
    const QString tokenizer = AppPaths::tokenizerDir();
    if (tokenizer.isEmpty()) {
        showError(tr("The demo model could not be created"),
                  tr("Its tokenizer files (tokenizer.json) were not found next to the program. Reinstall MoE Lens, "
                     "or point MOELENS_RESOURCES_DIR at a folder holding tokenizer/tokenizer.json."));
        return;
    }
    m_loading = true;
    updateInputState();
    EngineWorker* engine = m_engine;
    const QString dir = m_paths.demoModelDir();
    QMetaObject::invokeMethod(engine, [engine, dir, tokenizer] { engine->prepareDemoModel(dir, tokenizer); },
                              Qt::QueuedConnection);
}

void MainWindow::openModelFolder()
{
    if (m_generating || m_comparing || m_loading) return;
    const QString dir = QFileDialog::getExistingDirectory(
        this, tr("Open a model folder (config.json + .safetensors)"),
        m_modelDir.isEmpty() || m_model->is_demo ? QDir::homePath() : QFileInfo(m_modelDir).absolutePath());
    if (dir.isEmpty()) return;
    statusBar()->showMessage(tr("Checking %1...").arg(dir));
    EngineWorker* engine = m_engine;
    QMetaObject::invokeMethod(engine, [engine, dir] { engine->inspectModel(dir); }, Qt::QueuedConnection);
}

void MainWindow::onInspected(const moelens::ModelInfo& info)
{
    statusBar()->clearMessage();
    ModelCheckDialog dialog(info, m_settings.contextTokens, this);
    if (dialog.exec() == QDialog::Accepted) loadModel(QString::fromStdString(info.dir.string()));
}

void MainWindow::loadModel(const QString& dir)
{
    if (m_generating || m_comparing) return;
    m_loading = true;
    updateInputState();
    EngineWorker* engine = m_engine;
    QMetaObject::invokeMethod(engine, [engine, dir] { engine->loadModel(dir); }, Qt::QueuedConnection);
}

void MainWindow::onModelLoaded(const moelens::ModelInfo& info)
{
    if (m_model && !compareViews().isEmpty()) closeCompareTabs();
    m_model = info;
    m_modelDir = QDir::cleanPath(QString::fromStdString(info.dir.string()));
    m_loading = false;
    m_progress->hide();
    m_cancelLoad->hide();
    const bool builtin = QDir(m_modelDir) == QDir(AppPaths::builtinModelDir());
    m_modelLabel->setText(info.is_demo ? tr("demo model (random weights)")
                          : builtin    ? tr("built-in demo model (trained on the Python docs)")
                                       : QFileInfo(m_modelDir).fileName());
    m_modelLabel->setToolTip(ModelCheckDialog::reportHtml(info, m_settings.contextTokens));
    statusBar()->showMessage(tr("Model ready."), 4000);
    if (!info.is_demo && !builtin) {
        m_recentModels.removeAll(m_modelDir);
        m_recentModels.prepend(m_modelDir);
        while (m_recentModels.size() > kMaxRecentModels) m_recentModels.removeLast();
        rebuildRecentMenu();
    }
    const std::string recent = QJsonDocument(QJsonArray::fromStringList(m_recentModels)).toJson(QJsonDocument::Compact).toStdString();
    m_storage->post([recent, last = m_modelDir.toStdString()](Store& s) {
        s.set_setting(kRecentModelsKey, recent);
        s.set_setting(kLastModelKey, last);
    });
    updateInputState();
    emit modelReady();
}

void MainWindow::rebuildRecentMenu()
{
    m_recentMenu->clear();
    for (const QString& dir : m_recentModels) m_recentMenu->addAction(dir, this, [this, dir] { loadModel(dir); });
    m_recentMenu->setEnabled(!m_recentModels.isEmpty());
}

void MainWindow::selectAnswer(MessageId id)
{
    m_selectedAnswer = id;
    m_conversation->setSelected(id);
    if (id == m_liveReply && !m_liveTrace.isEmpty()) {
        showTrace(&m_liveTrace, {});
        emit answerTraceShown(id);
        return;
    }
    const std::optional<TraceShape> shape = m_model ? std::optional(TraceShape::fromInfo(*m_model)) : std::nullopt;
    m_storage->post([this, id, dir = m_modelDir, shape](Store& s) {
        std::optional<AnswerTrace> trace = loadAnswerTrace(s, id, dir, shape);
        StorageWorker::reply(this, [this, id, trace] {
            if (m_selectedAnswer != id || m_generating) return;
            m_replayTrace = trace.value_or(AnswerTrace{});
            showTrace(&m_replayTrace, trace ? tr("Replayed from the stored trace.") : tr("This answer has no stored routing trace."));
            emit answerTraceShown(id);
        });
    });
}

void MainWindow::showTrace(const AnswerTrace* trace, const QString& source)
{
    m_shownTrace = trace;
    m_shownSource = source;
    m_routing->setTrace(trace, source);
    // The live answer is not in the chat's stored traces yet: the chat scope adds it.
    m_load->setAnswer(trace, trace == &m_liveTrace && m_generating);
    m_cache->setTrace(trace);
    m_devices->setTrace(trace);
    applyTokenColouring();
}

void MainWindow::loadChatTraces()
{
    const std::optional<TraceShape> shape = m_model ? std::optional(TraceShape::fromInfo(*m_model)) : std::nullopt;
    m_storage->post([this, chat = m_chat, dir = m_modelDir, shape](Store& s) {
        std::vector<AnswerTrace> traces;
        for (const moelens::storage::Message& m : s.list_messages(chat))
            if (m.role == Role::Assistant)
                if (std::optional<AnswerTrace> t = loadAnswerTrace(s, m.id, dir, shape)) traces.push_back(std::move(*t));
        StorageWorker::reply(this, [this, chat, traces = std::move(traces)]() mutable {
            if (chat == m_chat) m_load->setChatTraces(std::move(traces));
        });
    });
}

void MainWindow::applyTokenColouring()
{
    if (m_colouredMessage && (!m_colourTokens->isChecked() || m_colouredMessage != m_selectedAnswer)) {
        if (MessageWidget* w = m_conversation->widgetFor(m_colouredMessage)) w->setText(w->text());
        if (m_conversation->streamingWidget() && m_conversation->streamingWidget()->messageId() == m_colouredMessage)
            m_conversation->streamingWidget()->setText(m_conversation->streamingWidget()->text());
        m_colouredMessage = 0;
    }
    if (!m_colourTokens->isChecked() || !m_shownTrace || m_shownTrace->tokens().empty()) return;
    MessageWidget* w = m_conversation->widgetFor(m_selectedAnswer);
    if (!w) return;
    const int layer = m_routing->currentLayer();
    const bool dark = paletteIsDark(this);
    QString html = QStringLiteral("<p style='white-space: pre-wrap'>");
    for (std::size_t t = 0; t < m_shownTrace->tokens().size(); ++t) {
        const TokenRow& row = m_shownTrace->tokens()[t];
        const int expert = m_shownTrace->topExpert(t, layer);
        QColor c = expert >= 0 ? expertColour(expert) : palette().color(QPalette::Base);
        c = dark ? c.darker(160) : c.lighter(150);
        html += QStringLiteral("<span style='background-color:%1' title='e%2'>%3</span>")
                    .arg(c.name())
                    .arg(expert)
                    .arg(row.text.toHtmlEscaped());
    }
    html += QStringLiteral("</p><p><small>") +
            tr("Coloured by each token's top-1 expert at layer %1 (View > Colour Answer by Top-1 Expert).").arg(layer) +
            QStringLiteral("</small></p>");
    w->setColouredHtml(html);
    m_colouredMessage = m_selectedAnswer;
}

void MainWindow::checkAttentionPaths()
{
    if (!m_model || m_generating || m_loading) return;
    const std::vector<ShownMessage>& path = m_conversation->messages();
    std::size_t index = path.size();
    for (std::size_t i = 0; i < path.size(); ++i)
        if (path[i].message.id == m_selectedAnswer) index = i;
    if (index == path.size() || !m_shownTrace || m_shownTrace->tokens().empty()) {
        showError(tr("Absorbed vs naive MLA"), tr("Select an answer with a routing trace first (click it)."));
        return;
    }
    std::vector<int> tokens;
    for (const TokenRow& row : m_shownTrace->tokens()) tokens.push_back(row.token);
    const ChatTurns turns = turnsBefore(path, index);
    statusBar()->showMessage(tr("Running the answer through both attention paths..."));
    m_checkAttention->setEnabled(false);
    EngineWorker* engine = m_engine;
    QMetaObject::invokeMethod(engine, [engine, turns, tokens] { engine->checkAttention(turns, tokens); },
                              Qt::QueuedConnection);
}

void MainWindow::onAttentionChecked(const AttentionCheckResult& r)
{
    statusBar()->clearMessage();
    updateInputState();
    if (!r.error.isEmpty()) {
        showError(tr("Absorbed vs naive MLA"), r.error);
        return;
    }
    const QString html =
        tr("<p>The selected answer's prompt and tokens (%1 positions) were fed through both attention paths.</p>"
           "<table cellspacing=4>"
           "<tr><td><b>Largest logit difference</b></td><td>%2</td></tr>"
           "<tr><td><b>Next-token choice changed</b></td><td>%3 of %1 positions</td></tr>"
           "<tr><td><b>Expert choice changed</b></td><td>%4 of %5 routing decisions</td></tr>"
           "<tr><td><b>Absorbed path</b></td><td>attends over the latent cache: %6 (%7 s)</td></tr>"
           "<tr><td><b>Naive path</b></td><td>rebuilds per-head keys and values: %8 (%9 s)</td></tr>"
           "</table><p>%10</p>")
            .arg(r.tokensCompared)
            .arg(r.maxLogitDiff, 0, 'g', 3)
            .arg(r.argmaxChanges)
            .arg(r.expertChanges)
            .arg(r.routedDecisions)
            .arg(formatBytes(double(r.absorbedCacheBytes)))
            .arg(r.absorbedSeconds, 0, 'f', 2)
            .arg(formatBytes(double(r.naiveRebuiltBytes)))
            .arg(r.naiveSeconds, 0, 'f', 2)
            .arg(r.argmaxChanges == 0 && r.expertChanges == 0
                     ? tr("Same tokens, same experts: absorbing W_UK and W_UV changes only rounding, as the paper claims.")
                     : tr("Some choices differ: near-ties flip under rounding differences between the two paths."));
    auto* box = new QMessageBox(QMessageBox::Information, tr("Absorbed vs naive MLA"), html, QMessageBox::Close, this);
    box->setObjectName(QStringLiteral("attentionCheckBox"));
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open();
}
