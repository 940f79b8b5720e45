// CompareView: keeping a column's answer in the chat, and deleting a stored comparison.
#include <QDateTime>
#include <QJsonDocument>
#include <QMessageBox>

#include "compare/compare_column.h"
#include "compare/compare_view.h"
#include "workers/model_fingerprint.h"
#include "workers/storage_worker.h"

using moelens::storage::ChatId;
using moelens::storage::MessageId;
using moelens::storage::Role;
using moelens::storage::Store;

void CompareView::keep(int index)
{
    if (m_keeping || index < 0 || std::size_t(index) >= m_columns.size() || m_ranTurns.empty()) return;
    CompareColumn* c = m_columns[std::size_t(index)];
    if (!c->result() || !c->ranWith()) return;
    const moelens::storage::ComparisonResult result = *c->result();
    // The run record says what produced the answer: its sampling settings with the
    // MoE settings beside them (so a kept answer from a what-if routing says so).
    QJsonObject sampling = c->ranWith()->samplingJson();
    sampling["moe"] = c->ranWith()->moeJson();
    sampling["compare_column"] = c->label();
    moelens::storage::RunRecord run;
    run.model_path = m_modelDir.toStdString();
    run.sampling_json = QJsonDocument(sampling).toJson(QJsonDocument::Compact).toStdString();
    run.tokens_in = result.tokens_in;
    run.tokens_out = result.tokens_out;
    run.decode_tokens_per_s = result.decode_tokens_per_s;
    run.stop_reason = result.stop_reason;
    run.started_ms = run.finished_ms = result.finished_ms;
    std::optional<moelens::storage::RoutingTrace> trace;
    if (!c->trace().tokens().empty()) trace = c->trace().toStorage();
    const moelens::storage::MessageState state =
        result.stop_reason == "cancelled" ? moelens::storage::MessageState::Stopped : moelens::storage::MessageState::Complete;

    const std::string question = m_ranTurns.back().content.toStdString();
    moelens::storage::NewChat fresh;
    fresh.title = m_ranTurns.back().content.simplified().left(48).toStdString();
    fresh.model = m_modelDir.toStdString();
    fresh.system_prompt = m_source.systemPrompt.toStdString();
    const ChatId chat = m_source.chat;
    const QString label = c->label();
    m_keeping = true;
    m_storage->post([this, chat, fresh, question, result, state, run, trace, label, holder = m_storing,
                     dir = m_modelDir](Store& s) mutable {
        try {
            ChatId target = chat;
            if (!target) {  // a new prompt: the kept answer starts a chat with it
                target = s.create_chat(fresh);
                s.append_message(target, Role::User, question);
                if (holder && *holder) s.set_comparison_chat(*holder, target);
            }
            std::optional<MessageId> user;
            std::string asked;
            for (const moelens::storage::Message& m : s.load_current_path(target))
                if (m.role == Role::User) {
                    user = m.id;
                    asked = m.content;
                }
            // The branch goes under the message the columns answered, never another one.
            if (!user || asked != question)
                throw std::runtime_error("the chat's last message is no longer the one this comparison answered "
                                         "(its branch or messages changed); run the comparison again from the chat");
            const MessageId reply = s.begin_reply(target, *user);
            run.model_fingerprint = modelFingerprint(dir);
            s.finish_reply(reply, result.text, state, run, trace ? &*trace : nullptr);
            StorageWorker::reply(this, [this, target, reply, label] {
                m_keeping = false;
                if (!m_source.chat) {
                    m_source.chat = target;
                    m_source.turns = m_ranTurns;
                    showSourceLabel();
                }
                setStatus(tr("Kept column %1's answer in the chat as a new branch.").arg(label));
                emit branchKept(target, reply);
            });
        } catch (const std::exception& e) {
            StorageWorker::reply(this, [this, message = QString::fromStdString(e.what())] {
                m_keeping = false;
                emit errorOccurred(tr("The answer could not be kept"), message);
            });
        }
    });
}

void CompareView::deleteStored()
{
    if (m_running || m_storedId == 0) return;
    if (QMessageBox::question(this, tr("Delete comparison"),
                              tr("Delete this stored comparison with its answers and traces? The columns stay on "
                                 "screen until the tab is closed.")) != QMessageBox::Yes)
        return;
    const moelens::storage::ComparisonId id = m_storedId;
    m_storedId = 0;
    m_storing = std::make_shared<moelens::storage::ComparisonId>(0);
    updateButtons();
    m_storage->post([this, id](Store& s) {
        s.delete_comparison(id);
        StorageWorker::reply(this, [this, id] {
            setStatus(tr("The stored comparison was deleted."));
            emit comparisonDeleted(id);
        });
    });
}
