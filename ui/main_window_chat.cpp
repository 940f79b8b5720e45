// MainWindow, part 2: chats, messages, branches and the answer being written.
#include <QDateTime>
#include <QMessageBox>
#include <QRandomGenerator>
#include <QStatusBar>
#include <QTimer>

#include <QJsonDocument>

#include "chat/chat_list.h"
#include "chat/input_box.h"
#include "chat/message_widget.h"
#include "main_window.h"
#include "viz/devices_panel.h"
#include "viz/expert_load.h"
#include "viz/latent_cache.h"
#include "viz/routing_map.h"
#include "workers/engine_worker.h"
#include "workers/model_fingerprint.h"
#include "workers/storage_worker.h"

using moelens::storage::Chat;
using moelens::storage::ChatId;
using moelens::storage::MessageId;
using moelens::storage::MessageState;
using moelens::storage::Role;
using moelens::storage::Store;

namespace {

// Streamed text is saved at most this often, so a crash loses little and the
// store is not written 30 times a second.
constexpr qint64 kSaveIntervalMs = 250;
// The charts are rebuilt on every third drain (~10 Hz); the map and text on every one.
constexpr int kChartEveryNthDrain = 3;

// The branch on screen, each answer with its latest run. Runs on the storage thread.
std::vector<ShownMessage> loadShownPath(Store& s, ChatId chat)
{
    std::vector<ShownMessage> out;
    for (moelens::storage::Message& m : s.load_current_path(chat)) {
        ShownMessage shown{std::move(m), std::nullopt};
        if (shown.message.role == Role::Assistant) {
            std::vector<moelens::storage::Run> runs = s.list_runs(shown.message.id);
            if (!runs.empty()) shown.run = runs.back();
        }
        out.push_back(std::move(shown));
    }
    return out;
}

}  // namespace

void MainWindow::refreshChatList()
{
    m_storage->post([this](Store& s) {
        std::vector<Chat> chats = s.list_chats();
        StorageWorker::reply(this, [this, chats] {
            m_chatList->setChats(chats);
            m_chatList->setCurrentChat(m_chat);
            if (std::exchange(m_openLatestChat, false) && m_chat == 0 && !chats.empty()) openChat(chats.front().id);
        });
    });
}

void MainWindow::openChat(ChatId id)
{
    if (m_generating || m_sending) {
        statusBar()->showMessage(tr("Wait for the answer to finish (or press Esc) before switching chats."), 5000);
        return;
    }
    m_storage->post([this, id](Store& s) {
        std::optional<Chat> chat = s.get_chat(id);
        if (!chat) return;
        std::vector<ShownMessage> path = loadShownPath(s, id);
        StorageWorker::reply(this, [this, id, info = *chat, path] { showPath(id, info, path); });
    });
}

void MainWindow::showPath(ChatId chat, const Chat& info, const std::vector<ShownMessage>& path)
{
    m_chat = chat;
    m_chatInfo = info;
    m_editing = 0;
    m_colouredMessage = 0;
    m_conversation->setMessages(path);
    m_chatList->setCurrentChat(chat);
    setWindowTitle(tr("%1 — MoE Lens").arg(QString::fromStdString(info.title)));
    MessageId lastAnswer = 0;
    for (const ShownMessage& m : path)
        if (m.message.role == Role::Assistant) lastAnswer = m.message.id;
    if (lastAnswer)
        selectAnswer(lastAnswer);
    else
        showTrace(&m_replayTrace, {});
    loadChatTraces();
    updateInputState();
    emit chatShown(chat);
}

void MainWindow::newChat()
{
    if (m_generating || m_sending) return;
    m_chat = 0;
    m_chatInfo = {};
    m_editing = 0;
    m_selectedAnswer = 0;
    m_replayTrace = {};
    m_conversation->showWelcome(welcomeHtml());
    m_chatList->setCurrentChat(0);
    setWindowTitle(QStringLiteral("MoE Lens"));
    showTrace(&m_replayTrace, {});
    m_load->setChatTraces({});
    updateInputState();
    m_input->setFocus();
}

void MainWindow::sendMessage()
{
    if (!m_model || m_loading || m_generating || m_sending || m_comparing) return;
    const QString text = m_input->toPlainText().trimmed();
    if (text.isEmpty()) return;
    m_input->clear();
    const ChatId chat = m_chat;
    const MessageId editing = m_editing;
    m_editing = 0;
    moelens::storage::NewChat fresh;
    fresh.title = text.simplified().left(48).toStdString();
    fresh.model = m_modelDir.toStdString();
    fresh.system_prompt = m_settings.systemPrompt.toStdString();
    m_sending = true;
    updateInputState();
    m_storage->post([this, chat, editing, fresh, content = text.toStdString()](Store& s) {
        const ChatId c = chat ? chat : s.create_chat(fresh);
        const MessageId user = editing ? s.edit_message(editing, content) : s.append_message(c, Role::User, content);
        const MessageId reply = s.begin_reply(c, user);
        const Chat info = *s.get_chat(c);
        std::vector<ShownMessage> path = loadShownPath(s, c);
        StorageWorker::reply(this, [this, c, info, path, reply] {
            m_chatInfo = info;
            startGeneration(c, path, reply);
            refreshChatList();
        });
    });
}

void MainWindow::sendText(const QString& text)
{
    m_input->setPlainText(text);
    sendMessage();
}

ChatTurns MainWindow::turnsBefore(const std::vector<ShownMessage>& path, std::size_t end) const
{
    ChatTurns turns;
    if (!m_chatInfo.system_prompt.empty())
        turns.push_back({QStringLiteral("system"), QString::fromStdString(m_chatInfo.system_prompt)});
    for (std::size_t i = 0; i < end && i < path.size(); ++i) {
        const moelens::storage::Message& m = path[i].message;
        if (m.role == Role::System) continue;
        turns.push_back({m.role == Role::User ? QStringLiteral("user") : QStringLiteral("assistant"),
                         QString::fromStdString(m.content)});
    }
    return turns;
}

void MainWindow::startGeneration(ChatId chat, const std::vector<ShownMessage>& path, MessageId reply)
{
    m_sending = false;
    if (path.empty() || path.back().message.id != reply || !m_model) {
        showError(tr("The answer could not be started"), tr("The chat's current branch does not end with the new reply."));
        updateInputState();
        return;
    }
    m_chat = chat;
    m_generating = true;
    m_liveReply = reply;
    m_editing = 0;
    m_colouredMessage = 0;
    m_conversation->setMessages(std::vector<ShownMessage>(path.begin(), path.end() - 1));
    m_conversation->beginStreaming(path.back().message);
    m_chatList->setCurrentChat(chat);
    setWindowTitle(tr("%1 — MoE Lens").arg(QString::fromStdString(m_chatInfo.title)));

    const std::uint64_t seed = m_settings.seed >= 0 ? std::uint64_t(m_settings.seed) : QRandomGenerator::global()->generate64();
    GenerateRequest request;
    request.id = ++m_generationId;
    request.turns = turnsBefore(path, path.size() - 1);
    request.sampling = m_settings.samplingParams(seed);
    m_liveRequest = request;
    m_liveText.clear();
    m_unsavedDelta.clear();
    m_liveStartedMs = QDateTime::currentMSecsSinceEpoch();
    m_lastSaveMs = m_liveStartedMs;
    m_drains = 0;
    m_engine->tokens().takeAll();  // nothing of an earlier answer may leak in

    m_liveTrace = AnswerTrace(TraceShape::fromInfo(*m_model));
    m_selectedAnswer = reply;
    m_conversation->setSelected(reply);
    showTrace(&m_liveTrace, tr("Live: the answer being written."));

    EngineWorker* engine = m_engine;
    QMetaObject::invokeMethod(engine, [engine, request] { engine->generate(request); }, Qt::QueuedConnection);
    m_drainTimer->start();
    updateInputState();
}

void MainWindow::drainTokens()
{
    const TokenRows rows = m_engine->tokens().takeAll();
    if (rows.empty()) return;
    QString added;
    for (const TokenRow& row : rows) {
        m_liveTrace.append(row);
        if (!row.isPrompt) added += row.text;
    }
    m_liveText += added;
    m_unsavedDelta += added;
    m_conversation->appendStreaming(added);
    if (MessageWidget* w = m_conversation->streamingWidget()) {
        const double seconds = (QDateTime::currentMSecsSinceEpoch() - m_liveStartedMs) / 1000.0;
        const std::size_t n = m_liveTrace.tokens().size();
        w->setStats(n == 0 ? tr("reading the prompt (%1 tokens)...").arg(m_liveTrace.promptTokens())
                           : tr("%n token(s) · %1 tok/s", nullptr, int(n)).arg(seconds > 0 ? n / seconds : 0.0, 0, 'f', 1));
    }
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    if (now - m_lastSaveMs >= kSaveIntervalMs && !m_unsavedDelta.isEmpty()) {
        m_storage->post([reply = m_liveReply, delta = m_unsavedDelta.toStdString()](Store& s) { s.append_reply_text(reply, delta); });
        m_unsavedDelta.clear();
        m_lastSaveMs = now;
    }
    if (m_shownTrace == &m_liveTrace) {
        m_routing->tokensAppended();
        if (++m_drains % kChartEveryNthDrain == 0) refreshInsideViews();
        if (m_colourTokens->isChecked()) applyTokenColouring();
    }
}

void MainWindow::refreshInsideViews()
{
    m_load->refresh();
    m_cache->refresh();
    m_devices->refresh();
}

void MainWindow::onGenerationFinished(const GenerationSummary& summary)
{
    if (summary.id != m_generationId) return;
    drainTokens();
    m_drainTimer->stop();
    m_generating = false;
    if (m_shownTrace == &m_liveTrace) {
        m_routing->tokensAppended();
        refreshInsideViews();
    }

    const QString text = summary.text.isEmpty() ? m_liveText : summary.text;
    const MessageState state = !summary.error.isEmpty() ? MessageState::Failed
                               : summary.stopped         ? MessageState::Stopped
                                                         : MessageState::Complete;
    moelens::storage::RunRecord run;
    run.model_path = m_modelDir.toStdString();
    QJsonObject sampling = m_settings.samplingJson();
    sampling["seed"] = qint64(m_liveRequest.sampling.seed);
    run.sampling_json = QJsonDocument(sampling).toJson(QJsonDocument::Compact).toStdString();
    run.tokens_in = summary.promptTokens;
    run.tokens_out = summary.generatedTokens;
    // The rate of what was read: a continued chat reuses its earlier turns' cache.
    const int read = summary.promptTokens - summary.reusedTokens;
    run.prefill_tokens_per_s = summary.prefillSeconds > 0 ? read / summary.prefillSeconds : 0;
    run.decode_tokens_per_s = summary.decodeSeconds > 0 ? summary.generatedTokens / summary.decodeSeconds : 0;
    run.stop_reason = summary.stopReason.toStdString();
    run.error = summary.error.toStdString();
    run.started_ms = m_liveStartedMs;
    run.finished_ms = QDateTime::currentMSecsSinceEpoch();
    if (summary.devices) {
        // The engine's final count (the live rows' last one may precede the end).
        m_liveTrace.setDevices(summary.devices);
        run.devices_json = summary.devices->toJson().toStdString();
        m_devices->refresh();
    }
    std::optional<moelens::storage::RoutingTrace> trace;
    if (!m_liveTrace.tokens().empty()) trace = m_liveTrace.toStorage();

    const ChatId chat = m_chat;
    const MessageId reply = m_liveReply;
    m_storage->post([this, chat, reply, text = text.toStdString(), state, run, trace, modelDir = m_modelDir](Store& s) mutable {
        run.model_fingerprint = modelFingerprint(modelDir);
        s.finish_reply(reply, text, state, run, trace ? &*trace : nullptr);
        const Chat info = *s.get_chat(chat);
        std::vector<ShownMessage> path = loadShownPath(s, chat);
        StorageWorker::reply(this, [this, chat, info, path] {
            if (m_generating || m_sending || chat != m_chat) return;  // the user moved on meanwhile
            showPath(chat, info, path);
            refreshChatList();
        });
    });
    if (!summary.error.isEmpty()) showError(tr("The answer failed"), summary.error);
    else if (summary.stopped) statusBar()->showMessage(tr("Stopped after %n token(s).", nullptr, summary.generatedTokens), 5000);
    else if (summary.turnsLeftOut > 0)
        statusBar()->showMessage(tr("The earliest %n message(s) were left out of the prompt to fit the %1-token context.",
                                    nullptr, summary.turnsLeftOut)
                                     .arg(summary.contextTokens),
                                 8000);
    updateInputState();
}

void MainWindow::stopGeneration()
{
    if (m_generating)
        m_engine->requestStop();
    else if (m_comparing)
        m_engine->requestCompareStop();
    else if (m_editing)
        cancelEdit();
}

void MainWindow::regenerate(MessageId answer)
{
    if (!m_model || m_loading || m_generating || m_sending || m_comparing) return;
    std::optional<MessageId> parent;
    for (const ShownMessage& m : m_conversation->messages())
        if (m.message.id == answer) parent = m.message.parent_id;
    if (!parent) return;
    const ChatId chat = m_chat;
    m_sending = true;
    updateInputState();
    m_storage->post([this, chat, parent = *parent](Store& s) {
        const MessageId reply = s.begin_reply(chat, parent);
        const Chat info = *s.get_chat(chat);
        std::vector<ShownMessage> path = loadShownPath(s, chat);
        StorageWorker::reply(this, [this, chat, info, path, reply] {
            m_chatInfo = info;
            startGeneration(chat, path, reply);
        });
    });
}

void MainWindow::regenerateLast()
{
    MessageId last = 0;
    for (const ShownMessage& m : m_conversation->messages())
        if (m.message.role == Role::Assistant) last = m.message.id;
    if (last) regenerate(last);
}

void MainWindow::beginEdit(MessageId message)
{
    if (m_generating || m_sending) return;
    for (const ShownMessage& m : m_conversation->messages()) {
        if (m.message.id != message) continue;
        m_editing = message;
        m_input->setPlainText(QString::fromStdString(m.message.content));
        m_input->setFocus();
        updateInputState();
    }
}

void MainWindow::cancelEdit()
{
    m_editing = 0;
    m_input->clear();
    updateInputState();
}

void MainWindow::stepBranch(MessageId message, int step)
{
    if (m_generating || m_sending) return;
    const ChatId chat = m_chat;
    m_storage->post([this, chat, message, step](Store& s) {
        const std::vector<MessageId> siblings = s.list_siblings(message);
        const auto it = std::find(siblings.begin(), siblings.end(), message);
        if (it == siblings.end()) return;
        const long target = long(it - siblings.begin()) + step;
        if (target < 0 || target >= long(siblings.size())) return;
        s.select_branch(siblings[std::size_t(target)]);
        const Chat info = *s.get_chat(chat);
        std::vector<ShownMessage> path = loadShownPath(s, chat);
        StorageWorker::reply(this, [this, chat, info, path] { showPath(chat, info, path); });
    });
}

void MainWindow::deleteChat(ChatId id, const QString& title)
{
    if (m_generating && id == m_chat) {
        statusBar()->showMessage(tr("Stop the answer before deleting its chat."), 5000);
        return;
    }
    if (QMessageBox::question(this, tr("Delete chat"),
                              tr("Delete \"%1\" with all its messages and traces? This cannot be undone.").arg(title)) !=
        QMessageBox::Yes)
        return;
    m_storage->post([this, id](Store& s) {
        s.delete_chat(id);
        StorageWorker::reply(this, [this, id] {
            if (m_chat == id) newChat();
            refreshChatList();
        });
    });
}

void MainWindow::runSearch(const QString& query)
{
    if (query.isEmpty()) return;
    m_storage->post([this, query](Store& s) {
        std::vector<moelens::storage::SearchHit> hits = s.search(query.toStdString());
        StorageWorker::reply(this, [this, query, hits] { m_chatList->setSearchHits(query, hits); });
    });
}
