#include "workers/engine_worker.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>

#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>

#include "moelens/demo.h"
#include "moelens/error.h"
#include "workers/chat_codec.h"

namespace {

QString fromStd(const std::string& s) { return QString::fromStdString(s); }

bool sameExperts(const moelens::RoutingRecord& a, const moelens::RoutingRecord& b)
{
    std::vector<int> x = a.experts, y = b.experts;
    std::sort(x.begin(), x.end());
    std::sort(y.begin(), y.end());
    return x == y;
}

}  // namespace

EngineWorker::EngineWorker() = default;
EngineWorker::~EngineWorker() = default;

void EngineWorker::prepareDemoModel(const QString& dir, const QString& tokenizerDir)
{
    const QString config = QDir(dir).filePath(QStringLiteral("config.json"));
    bool usable = false;
    if (QFileInfo::exists(config)) {
        try {
            usable = moelens::inspect_model(dir.toStdString()).is_demo;
        } catch (const std::exception& e) {
            spdlog::warn("the demo model in {} is damaged ({}); writing it again", dir.toStdString(), e.what());
        }
    }
    if (!usable) {
        try {
            spdlog::info("writing the demo model to {} (tokenizer from {})", dir.toStdString(),
                         tokenizerDir.toStdString());
            emit loadStarted(dir);
            emit loadProgress(0, 0, tr("creating the demo model"));
            moelens::DemoModelSpec spec;
            spec.tokenizer_dir = tokenizerDir.toStdString();
            moelens::write_demo_model(dir.toStdString(), spec);
            emit demoModelWritten(dir);
        } catch (const std::exception& e) {
            spdlog::error("cannot write the demo model to {}: {}", dir.toStdString(), e.what());
            emit loadFailed(dir, tr("The demo model could not be created in %1: %2").arg(dir, fromStd(e.what())));
            return;
        }
    }
    loadModel(dir);
}

void EngineWorker::inspectModel(const QString& dir)
{
    try {
        emit inspected(moelens::inspect_model(dir.toStdString()));
    } catch (const std::exception& e) {
        spdlog::warn("model check of {} failed: {}", dir.toStdString(), e.what());
        emit inspectFailed(dir, fromStd(e.what()));
    }
}

void EngineWorker::loadModel(const QString& dir)
{
    m_cancelLoad.store(false);
    emit loadStarted(dir);
    try {
        moelens::LoadOptions options;
        options.threads = unsigned(std::max(0, m_threads));
        options.progress = [this](const moelens::LoadProgress& p) {
            emit loadProgress(qint64(p.done), qint64(p.total), fromStd(p.stage));
            return !m_cancelLoad.load();
        };
        QElapsedTimer timer;
        timer.start();
        std::shared_ptr<const moelens::Model> model = moelens::load_model(dir.toStdString(), options);
        auto codec = std::make_unique<ChatCodec>(dir);
        // Drop the old model only once the new one is ready: a failed load keeps
        // the previous model usable.
        m_session.reset();
        m_model = std::move(model);
        m_codec = std::move(codec);
        makeSession();
        spdlog::info("model {} loaded in {} ms ({} threads)", dir.toStdString(), timer.elapsed(), m_model->threads());
        emit modelLoaded(m_model->info());
    } catch (const moelens::Cancelled&) {
        spdlog::info("loading {} cancelled", dir.toStdString());
        emit loadCancelled(dir);
    } catch (const std::exception& e) {
        spdlog::error("loading {} failed: {}", dir.toStdString(), e.what());
        emit loadFailed(dir, fromStd(e.what()));
    }
}

void EngineWorker::setDevices(int virtualDevices, double memoryMiB)
{
    if (virtualDevices == m_virtualDevices && memoryMiB == m_deviceMemoryMiB) return;
    m_virtualDevices = virtualDevices;
    m_deviceMemoryMiB = memoryMiB;
    if (m_model) makeSession();
}

void EngineWorker::makeSession()
{
    const moelens::ModelInfo& info = m_model->info();
    int devices = m_virtualDevices;
    if (devices < 0) devices = info.topk_method == "group_limited_greedy" && info.n_group > 1 ? info.n_group : 1;
    if (info.n_routed_experts == 0) devices = 1;  // a GPU model refuses them (Scheduler): caught below
    devices = std::min(devices, std::max(1, info.n_routed_experts));
    moelens::SessionOptions options;
    options.max_tokens = contextLimit();
    options.virtual_devices = devices > 1 ? devices : 0;
    options.virtual_device_memory = std::uint64_t(m_deviceMemoryMiB * 1024.0 * 1024.0);
    QString problem;
    m_session.reset();
    try {
        m_session = std::make_unique<moelens::Session>(m_model, options);
    } catch (const std::exception& e) {
        problem = tr("%1 virtual devices cannot be used: %2. Running on one device.").arg(devices).arg(fromStd(e.what()));
        spdlog::warn("{}", problem.toStdString());
        options.virtual_devices = 0;
        devices = 1;
        m_session = std::make_unique<moelens::Session>(m_model, options);
    }
    spdlog::info("session on {} device(s){}", devices,
                 devices > 1 && m_deviceMemoryMiB > 0 ? fmt::format(", {} MiB each", m_deviceMemoryMiB) : std::string());
    emit devicesApplied(devices, problem);
}

std::optional<DeviceTraffic> EngineWorker::deviceTraffic(const moelens::ExpertTraffic* traffic, int deviceLimit) const
{
    const moelens::ExpertPlacement* placement = m_session ? m_session->placement() : nullptr;
    if (!traffic || !placement) return std::nullopt;
    const moelens::ModelInfo& info = m_model->info();
    DeviceTraffic d;
    d.placement = *placement;
    d.traffic = *traffic;
    d.deviceLimit = info.topk_method != "group_limited_greedy" ? 0 : deviceLimit >= 0 ? deviceLimit : info.topk_group;
    d.memoryBytes = std::uint64_t(m_deviceMemoryMiB * 1024.0 * 1024.0);
    return d;
}

int EngineWorker::contextLimit() const
{
    const int limit = m_model->config().max_position_embeddings;
    return limit > 0 ? std::min(m_contextTokens, limit) : m_contextTokens;
}

void EngineWorker::generate(const GenerateRequest& request)
{
    m_stop.store(false);
    emit generationStarted(request.id);
    GenerationSummary summary;
    summary.id = request.id;
    if (!m_session) {
        summary.stopReason = QStringLiteral("error");
        summary.error = tr("No model is loaded.");
        emit generationFinished(summary);
        return;
    }
    try {
        // Room for the answer: what was asked for, but at most a quarter of the
        // context, so a long conversation keeps its recent turns.
        const int context = m_session->max_tokens();
        const int answerRoom = std::clamp(request.sampling.max_new_tokens, 1, std::max(1, context / 4));
        const ChatCodec::Encoded encoded = m_codec->encodeChat(request.turns, context - answerRoom);
        const std::vector<int>& prompt = encoded.tokens;
        summary.turnsLeftOut = encoded.turnsLeftOut;
        summary.contextTokens = context;
        if (encoded.turnsLeftOut > 0)
            spdlog::info("{} earliest turns left out to fit the {}-token context", encoded.turnsLeftOut, context);
        // The session still holds the previous turn (its prompt and answer): keep
        // what this prompt starts with and read only the rest. Never past the
        // start of the message being answered, whose routing the trace shows.
        const std::size_t messageStart =
            std::size_t(std::clamp(encoded.latestMessageStart, 0, std::max(0, int(prompt.size()) - 1)));
        const int kept = m_session->keep_prefix(std::span<const int>(prompt).first(messageStart + 1));
        if (kept > 0) spdlog::info("{} cached tokens of the conversation reused", kept);
        m_codec->beginAnswer();
        QString text;
        const moelens::EventSink sink = [&](const moelens::TokenEvent& e) {
            TokenRow row;
            row.token = e.token;
            row.position = e.position;
            row.isPrompt = e.is_prompt;
            row.inLatestMessage = e.is_prompt && e.position >= encoded.latestMessageStart;
            if (row.inLatestMessage) row.text = m_codec->tokenText(e.token);
            row.routing = e.routing;
            row.cache = e.cache;
            if (!e.is_prompt) {
                row.text = m_codec->decodeNext(e.token);
                text += row.text;
                row.devices = deviceTraffic(m_session->generation_traffic());
            }
            m_tokens.push(std::move(row));
            return true;
        };
        const moelens::GenerationResult r =
            m_session->generate(std::span<const int>(prompt).subspan(std::size_t(kept)), request.sampling, sink, &m_stop);
        text += m_codec->flush();
        summary.text = text;
        summary.promptTokens = int(prompt.size());
        summary.reusedTokens = kept;
        summary.generatedTokens = int(r.tokens.size());
        summary.prefillSeconds = r.prefill_seconds;
        summary.decodeSeconds = r.decode_seconds;
        summary.stopReason = QString::fromUtf8(moelens::stop_reason_name(r.reason));
        summary.stopped = r.reason == moelens::StopReason::cancelled;
        summary.devices = deviceTraffic(r.traffic ? &*r.traffic : nullptr);
        // The session refuses, before reading it, a prompt the context cannot hold:
        // only the last turn is left then, so say what to do instead of ending empty.
        if (r.reason == moelens::StopReason::context_full && r.tokens.empty())
            summary.error = tr("The message needs %1 tokens, but the context holds %2. Shorten it, or raise the "
                               "context length in Settings if the model allows more.")
                                .arg(prompt.size())
                                .arg(context);
        spdlog::info("generated {} tokens after a {}-token prompt ({}; {:.1f} tok/s)", summary.generatedTokens,
                     summary.promptTokens, summary.stopReason.toStdString(),
                     r.decode_seconds > 0 ? summary.generatedTokens / r.decode_seconds : 0.0);
    } catch (const moelens::DeviceFault& e) {
        // The device's state is gone: what the session held is dropped and a new
        // one built (on a GPU: the device set up again); the next answer reads the
        // chat again.
        spdlog::error("generation stopped by a device fault: {}", e.what());
        summary.stopReason = QStringLiteral("error");
        summary.error = tr("The answer stopped: %1").arg(fromStd(e.what()));
        summary.devices = deviceTraffic(m_session->generation_traffic());
        makeSession();
    } catch (const std::exception& e) {
        spdlog::error("generation failed: {}", e.what());
        summary.stopReason = QStringLiteral("error");
        summary.error = fromStd(e.what());
    }
    emit generationFinished(summary);
}

void EngineWorker::checkAttention(const ChatTurns& turns, const std::vector<int>& answerTokens)
{
    AttentionCheckResult result;
    if (!m_model) {
        result.error = tr("No model is loaded.");
        emit attentionChecked(result);
        return;
    }
    try {
        // Fitted to the context like a prompt, less the answer's tokens, so the rerun
        // stays within what the model was made for.
        std::vector<int> tokens =
            m_codec->encodeChat(turns, std::max(1, m_session->max_tokens() - int(answerTokens.size()))).tokens;
        tokens.insert(tokens.end(), answerTokens.begin(), answerTokens.end());
        moelens::SessionOptions options;
        options.max_tokens = int(tokens.size()) + 1;
        options.attention = moelens::AttentionPath::absorbed;
        moelens::Session absorbed(m_model, options);
        options.attention = moelens::AttentionPath::naive;
        moelens::Session naive(m_model, options);

        std::vector<moelens::RoutingRecord> routeA, routeN;
        const auto keepA = [&](const moelens::TokenEvent& e) { routeA = e.routing; return true; };
        const auto keepN = [&](const moelens::TokenEvent& e) { routeN = e.routing; return true; };
        QElapsedTimer timer;
        for (int token : tokens) {
            timer.start();
            const std::span<const float> a = absorbed.step(token, keepA, true);
            result.absorbedSeconds += timer.nsecsElapsed() / 1e9;
            timer.start();
            const std::span<const float> n = naive.step(token, keepN, true);
            result.naiveSeconds += timer.nsecsElapsed() / 1e9;
            for (std::size_t i = 0; i < a.size() && i < n.size(); ++i)
                result.maxLogitDiff = std::max(result.maxLogitDiff, double(std::fabs(a[i] - n[i])));
            if (moelens::argmax(a) != moelens::argmax(n)) ++result.argmaxChanges;
            for (std::size_t l = 0; l < routeA.size() && l < routeN.size(); ++l) {
                ++result.routedDecisions;
                if (!sameExperts(routeA[l], routeN[l])) ++result.expertChanges;
            }
            ++result.tokensCompared;
        }
        result.absorbedCacheBytes = absorbed.cache_stats().latent_bytes_used;
        result.naiveRebuiltBytes = naive.cache_stats().mha_equivalent_bytes;
    } catch (const std::exception& e) {
        spdlog::error("absorbed vs naive check failed: {}", e.what());
        result.error = fromStd(e.what());
    }
    emit attentionChecked(result);
}
