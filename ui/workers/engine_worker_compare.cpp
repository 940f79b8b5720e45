// EngineWorker, the compare slot: one prompt, several settings sets, one batch.
#include <algorithm>
#include <map>

#include <spdlog/spdlog.h>

#include "moelens/error.h"
#include "moelens/scheduler.h"
#include "workers/chat_codec.h"
#include "workers/engine_worker.h"

namespace {

// What the worker keeps of a column while the batch runs (engine thread only).
struct ColumnRun {
    bool submitted = false;
    bool finished = false;  // its result was sent
    TokenRows rows;  // as the engine reported them, prompt and generated
    QString text;
};

CompareColumnResult failedColumn(quint64 id, int column, const QString& message)
{
    CompareColumnResult r;
    r.id = id;
    r.column = column;
    r.stopReason = QStringLiteral("error");
    r.error = message;
    return r;
}

}  // namespace

void EngineWorker::compare(const CompareRequest& request)
{
    m_compareStop.store(false);
    for (std::atomic<bool>& f : m_columnStop) f.store(false);
    const int n = std::min(int(request.columns.size()), kMaxCompareColumns);
    const auto failAll = [&](const QString& message) {
        for (int c = 0; c < n; ++c) emit compareColumnFinished(failedColumn(request.id, c, message));
        emit compareFinished(request.id);
    };
    if (!m_model) return failAll(tr("No model is loaded."));

    std::vector<ColumnRun> runs(std::size_t(n), ColumnRun{});
    try {
        // As a chat answer: the prompt leaves room for the longest column's answer,
        // at most a quarter of the context.
        const int context = contextLimit();
        int longest = 1;
        for (int c = 0; c < n; ++c) longest = std::max(longest, request.columns[std::size_t(c)].sampling.max_new_tokens);
        const int answerRoom = std::clamp(longest, 1, std::max(1, context / 4));
        const ChatCodec::Encoded encoded = m_codec->encodeChat(request.turns, context - answerRoom);
        if (int(encoded.tokens.size()) >= context)
            return failAll(tr("The prompt needs %1 tokens, but the context holds %2.").arg(encoded.tokens.size()).arg(context));
        emit compareStarted(request.id, int(encoded.tokens.size()));
        m_codec->beginAnswers(n);

        // On the chat's devices, so each column's traffic is what a placement would cost with its settings.
        moelens::SchedulerOptions options;
        if (const moelens::ExpertPlacement* p = m_session ? m_session->placement() : nullptr) {
            options.virtual_devices = p->devices;
            options.virtual_device_memory = std::uint64_t(m_deviceMemoryMiB * 1024.0 * 1024.0);
        }
        moelens::Scheduler scheduler(m_model, options);
        for (int c = 0; c < n; ++c) {
            const CompareColumnRequest& column = request.columns[std::size_t(c)];
            try {
                // Refused here with the model's limits named, before anything runs.
                moelens::check_moe_settings(m_model->config(), column.moe);
                moelens::GenerationRequest g;
                g.prompt = encoded.tokens;
                g.sampling = column.sampling;
                g.sampling.max_new_tokens = std::clamp(column.sampling.max_new_tokens, 1, answerRoom);
                g.max_tokens = context;
                g.moe = column.moe;
                g.cancel = &m_columnStop[std::size_t(c)];
                g.on_event = [this, c, &runs, &encoded](const moelens::TokenEvent& e) {
                    TokenRow row;
                    row.token = e.token;
                    row.position = e.position;
                    row.isPrompt = e.is_prompt;
                    row.routing = e.routing;
                    row.cache = e.cache;
                    row.inLatestMessage = e.is_prompt && e.position >= encoded.latestMessageStart;
                    if (row.inLatestMessage) row.text = m_codec->tokenText(e.token);
                    if (!e.is_prompt) {
                        row.text = m_codec->decodeNext(c, e.token);
                        runs[std::size_t(c)].text += row.text;
                    }
                    runs[std::size_t(c)].rows.push_back(row);
                    m_compareRows.push({c, std::move(row)});
                    return true;
                };
                g.on_finish = [this, c, id = request.id, &runs, &request](moelens::SequenceId,
                                                                         const moelens::GenerationResult& r) {
                    CompareColumnResult out;
                    out.id = id;
                    out.column = c;
                    out.text = runs[std::size_t(c)].text + m_codec->flush(c);
                    out.generatedTokens = int(r.tokens.size());
                    out.decodeSeconds = r.decode_seconds;
                    out.stopReason = QString::fromUtf8(moelens::stop_reason_name(r.reason));
                    out.error = QString::fromStdString(r.error);
                    out.devices = deviceTraffic(r.traffic ? &*r.traffic : nullptr,
                                                moelens::effective_device_limit(m_model->config(), request.columns[std::size_t(c)].moe));
                    // A prompt shared with a column of the same MoE settings was computed
                    // (and reported) once, by that column: its rows are this column's too.
                    std::map<int, const TokenRow*> shared;
                    for (int d = 0; d < int(runs.size()); ++d) {
                        if (d == c || request.columns[std::size_t(d)].moe != request.columns[std::size_t(c)].moe) continue;
                        for (const TokenRow& row : runs[std::size_t(d)].rows)
                            if (row.isPrompt && row.position < r.reused_tokens) shared.emplace(row.position, &row);
                    }
                    for (const auto& [position, row] : shared) out.rows.push_back(*row);
                    out.rows.insert(out.rows.end(), runs[std::size_t(c)].rows.begin(), runs[std::size_t(c)].rows.end());
                    runs[std::size_t(c)].finished = true;
                    emit compareColumnFinished(out);
                };
                scheduler.submit(std::move(g));
                runs[std::size_t(c)].submitted = true;
            } catch (const std::exception& e) {
                spdlog::warn("compare column {} refused: {}", c, e.what());
                emit compareColumnFinished(failedColumn(request.id, c, QString::fromStdString(e.what())));
            }
        }
        scheduler.run(&m_compareStop);
        spdlog::info("compared {} settings over a {}-token prompt", n, encoded.tokens.size());
    } catch (const std::exception& e) {
        // The batch itself failed (a step, memory): every column still running ends with it.
        spdlog::error("comparison failed: {}", e.what());
        for (int c = 0; c < n; ++c)
            if (runs[std::size_t(c)].submitted && !runs[std::size_t(c)].finished)
                emit compareColumnFinished(failedColumn(request.id, c, QString::fromStdString(e.what())));
    }
    emit compareFinished(request.id);
}
