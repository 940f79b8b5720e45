#include "compare/compare_column.h"

#include <QComboBox>
#include <QDateTime>
#include <QDoubleSpinBox>
#include <QEvent>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QJsonDocument>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QSpinBox>
#include <QToolButton>
#include <QVBoxLayout>

#include <limits>

#include "moelens/error.h"

namespace {

QString paramsText(std::uint64_t n)
{
    if (n >= 1000000000ull) return QStringLiteral("%1 B").arg(double(n) / 1e9, 0, 'f', 2);
    if (n >= 1000000ull) return QStringLiteral("%1 M").arg(double(n) / 1e6, 0, 'f', 2);
    return QStringLiteral("%1 K").arg(double(n) / 1e3, 0, 'f', 1);
}

QDoubleSpinBox* doubleBox(double lo, double hi, double step, int decimals, QWidget* parent)
{
    auto* b = new QDoubleSpinBox(parent);
    b->setRange(lo, hi);
    b->setSingleStep(step);
    b->setDecimals(decimals);
    return b;
}

QSpinBox* intBox(int lo, int hi, QWidget* parent)
{
    auto* b = new QSpinBox(parent);
    b->setRange(lo, hi);
    return b;
}

bool groupLimited(const moelens::ModelInfo& m) { return m.topk_method == "group_limited_greedy" && m.n_group > 1; }

}  // namespace

CompareColumn::CompareColumn(int index, const moelens::ModelInfo& model, const ColumnSettings& settings,
                             const std::vector<moelens::storage::Preset>& presets, QWidget* parent)
    : QFrame(parent), m_index(index), m_model(model), m_presets(presets), m_trace(shapeFor(settings.moe))
{
    setObjectName(QStringLiteral("compareColumn%1").arg(label()));
    setFrameShape(QFrame::StyledPanel);
    setMinimumWidth(240);

    m_title = new QLabel(this);
    m_title->setObjectName(QStringLiteral("columnTitle"));
    m_title->setText(QStringLiteral("<b>%1</b>").arg(label()));
    m_moeLabel = new QLabel(this);
    m_moeLabel->setObjectName(QStringLiteral("moeLabel"));
    m_moeLabel->setWordWrap(true);
    m_stop = new QToolButton(this);
    m_stop->setObjectName(QStringLiteral("columnStop"));
    m_stop->setText(tr("Stop"));
    m_stop->setToolTip(tr("Stop this column; the others go on"));
    m_stop->setEnabled(false);
    connect(m_stop, &QToolButton::clicked, this, [this] { emit stopRequested(m_index); });
    m_keep = new QToolButton(this);
    m_keep->setObjectName(QStringLiteral("keepButton"));
    m_keep->setText(tr("Keep as branch"));
    m_keep->setToolTip(tr("Keep as branch: store this answer in the chat as a new answer to its last message, with these settings"));
    m_keep->setEnabled(false);
    connect(m_keep, &QToolButton::clicked, this, [this] { emit keepRequested(m_index); });
    auto* header = new QHBoxLayout;
    header->addWidget(m_title);
    header->addWidget(m_moeLabel, 1);
    header->addWidget(m_stop);

    m_error = new QLabel(this);
    m_error->setObjectName(QStringLiteral("settingsError"));
    m_error->setWordWrap(true);
    m_error->setStyleSheet(QStringLiteral("color: #c0392b"));
    m_error->hide();
    m_text = new QPlainTextEdit(this);
    m_text->setObjectName(QStringLiteral("columnText"));
    m_text->setReadOnly(true);
    m_text->setPlaceholderText(tr("Run to see this column's answer."));
    m_text->viewport()->installEventFilter(this);
    // Its height is what is left: a size hint would make the column taller than the
    // scroll area (which sizes it by height-for-width) and hide the numbers below.
    m_text->setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Ignored);
    m_text->setMinimumHeight(60);
    m_stats = new QLabel(this);
    m_stats->setObjectName(QStringLiteral("columnStats"));
    m_stats->setWordWrap(true);
    m_active = new QLabel(this);
    m_active->setObjectName(QStringLiteral("activeParams"));
    m_active->setWordWrap(true);
    m_active->setForegroundRole(QPalette::PlaceholderText);
    m_active->setToolTip(tr("Parameters one token reads with these MoE settings: the dense part (attention, embeddings, output head), the shared experts and K routed experts per MoE layer"));

    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(6, 6, 6, 6);
    layout->setSpacing(4);
    layout->addLayout(header);
    layout->addWidget(buildSettings(presets));
    layout->addWidget(m_error);
    layout->addWidget(m_text, 1);
    layout->addWidget(m_stats);
    auto* footer = new QHBoxLayout;  // one row: the column must fit 800 pixels of screen
    footer->addWidget(m_active, 1);
    footer->addWidget(m_keep);
    layout->addLayout(footer);
    setSettings(settings);
}

QWidget* CompareColumn::buildSettings(const std::vector<moelens::storage::Preset>& presets)
{
    auto* box = new QWidget(this);
    auto* grid = new QGridLayout(box);
    grid->setContentsMargins(0, 0, 0, 0);
    grid->setHorizontalSpacing(6);
    grid->setVerticalSpacing(2);
    m_preset = new QComboBox(box);
    m_preset->setObjectName(QStringLiteral("presetBox"));
    m_preset->addItem(tr("Preset..."));
    m_preset->addItem(tr("Greedy"));
    for (const moelens::storage::Preset& p : presets) m_preset->addItem(QString::fromStdString(p.name));
    m_preset->setToolTip(tr("Fills in this column's sampling settings from a preset"));
    connect(m_preset, qOverload<int>(&QComboBox::activated), this, &CompareColumn::applyPreset);

    m_temperature = doubleBox(0, 2, 0.05, 2, box);
    m_temperature->setToolTip(tr("Temperature (0: greedy)"));
    m_topK = intBox(0, 100000, box);
    m_topK->setToolTip(tr("Top-k (0: off)"));
    m_topP = doubleBox(0, 1, 0.01, 2, box);
    m_topP->setToolTip(tr("Top-p (1: off)"));
    m_minP = doubleBox(0, 1, 0.01, 2, box);
    m_minP->setToolTip(tr("Min-p (0: off)"));
    m_repetition = doubleBox(0.5, 2, 0.01, 2, box);
    m_repetition->setToolTip(tr("Repetition penalty (1: off)"));
    m_seed = intBox(0, std::numeric_limits<int>::max(), box);
    m_seed->setToolTip(tr("Seed: the same seed and settings give the same tokens"));
    m_maxTokens = intBox(1, 4096, box);
    m_maxTokens->setToolTip(tr("Most tokens to generate"));

    m_experts = intBox(1, std::max(1, m_model.n_routed_experts), box);
    m_experts->setObjectName(QStringLiteral("expertsPerToken"));
    m_experts->setToolTip(tr("Routed experts per token (the model uses %1 of %2)").arg(m_model.top_k).arg(m_model.n_routed_experts));
    m_deviceLimit = intBox(1, std::max(1, m_model.n_group), box);
    m_deviceLimit->setObjectName(QStringLiteral("deviceLimit"));
    if (groupLimited(m_model)) {
        m_deviceLimit->setToolTip(tr("Device limit M: expert groups (devices) a token may use (the model uses %1 of %2)")
                                      .arg(m_model.topk_group)
                                      .arg(m_model.n_group));
    } else {
        m_deviceLimit->setEnabled(false);
        m_deviceLimit->setToolTip(tr("This model routes over all experts at once (%1), not group-limited: there is "
                                     "no device limit to set.")
                                      .arg(QString::fromStdString(m_model.topk_method)));
    }
    m_disabled = new QLineEdit(box);
    m_disabled->setObjectName(QStringLiteral("disabledExperts"));
    m_disabled->setPlaceholderText(tr("none (layer:expert,...)"));
    m_disabled->setToolTip(tr("Experts switched off, as LAYER:EXPERT,... (e.g. 3:12,3:40): their gate scores are "
                              "masked before the top-k"));

    const auto label = [box](const QString& text) { return new QLabel(text, box); };
    grid->addWidget(m_preset, 0, 0, 1, 4);
    grid->addWidget(label(tr("temp")), 1, 0);
    grid->addWidget(m_temperature, 1, 1);
    grid->addWidget(label(tr("top-k")), 1, 2);
    grid->addWidget(m_topK, 1, 3);
    grid->addWidget(label(tr("top-p")), 2, 0);
    grid->addWidget(m_topP, 2, 1);
    grid->addWidget(label(tr("min-p")), 2, 2);
    grid->addWidget(m_minP, 2, 3);
    grid->addWidget(label(tr("rep.")), 3, 0);
    grid->addWidget(m_repetition, 3, 1);
    grid->addWidget(label(tr("seed")), 3, 2);
    grid->addWidget(m_seed, 3, 3);
    grid->addWidget(label(tr("max")), 4, 0);
    grid->addWidget(m_maxTokens, 4, 1);
    grid->addWidget(label(tr("dev. M")), 4, 2);
    grid->addWidget(m_deviceLimit, 4, 3);
    // The MoE knobs get the full width: "2 (model)" and an expert list must be readable.
    grid->addWidget(label(tr("experts")), 5, 0);
    grid->addWidget(m_experts, 5, 1, 1, 3);
    grid->addWidget(label(tr("off")), 6, 0);
    grid->addWidget(m_disabled, 6, 1, 1, 3);
    grid->setColumnStretch(1, 1);
    grid->setColumnStretch(3, 1);

    for (QDoubleSpinBox* b : {m_temperature, m_topP, m_minP, m_repetition})
        connect(b, &QDoubleSpinBox::valueChanged, this, &CompareColumn::settingsChanged);
    for (QSpinBox* b : {m_topK, m_seed, m_maxTokens})
        connect(b, &QSpinBox::valueChanged, this, &CompareColumn::settingsChanged);
    for (QSpinBox* b : {m_experts, m_deviceLimit})
        connect(b, &QSpinBox::valueChanged, this, &CompareColumn::validate);
    connect(m_disabled, &QLineEdit::textChanged, this, &CompareColumn::validate);
    return box;
}

void CompareColumn::applyPreset(int index)
{
    if (index <= 0) return;
    ColumnSettings s = settings();
    if (index == 1) {
        s.sampling.temperature = 0;
    } else if (std::size_t(index - 2) < m_presets.size()) {
        const qint64 seed = s.sampling.seed;
        s.sampling.applySampling(QJsonDocument::fromJson(QByteArray::fromStdString(m_presets[std::size_t(index - 2)].sampling_json)).object());
        // A preset's "new seed every time" (-1) keeps the column's seed: a column is reproducible.
        if (s.sampling.seed < 0) s.sampling.seed = seed;
    }
    setSettings(s);
    m_preset->setCurrentIndex(0);
}

ColumnSettings CompareColumn::settings() const
{
    ColumnSettings s;
    s.sampling.temperature = m_temperature->value();
    s.sampling.topK = m_topK->value();
    s.sampling.topP = m_topP->value();
    s.sampling.minP = m_minP->value();
    s.sampling.repetitionPenalty = m_repetition->value();
    s.sampling.seed = m_seed->value();
    s.sampling.maxTokens = m_maxTokens->value();
    // The model's own values are stored as 0 ("the model's"), so a default column stays default.
    s.moe.experts_per_token = m_experts->value() == m_model.top_k ? 0 : m_experts->value();
    s.moe.device_limit = !groupLimited(m_model) || m_deviceLimit->value() == m_model.topk_group ? 0 : m_deviceLimit->value();
    try {
        s.moe.disabled = moelens::parse_disabled_experts(m_disabled->text().remove(' ').toStdString());
    } catch (const std::exception&) {
        s.moe.disabled.clear();  // validate() shows the message; such a column does not run
    }
    return s;
}

void CompareColumn::setSettings(const ColumnSettings& s)
{
    const QSignalBlocker b1(m_experts), b2(m_deviceLimit), b3(m_disabled);
    m_temperature->setValue(s.sampling.temperature);
    m_topK->setValue(s.sampling.topK);
    m_topP->setValue(s.sampling.topP);
    m_minP->setValue(s.sampling.minP);
    m_repetition->setValue(s.sampling.repetitionPenalty);
    m_seed->setValue(int(std::clamp<qint64>(s.sampling.seed, 0, std::numeric_limits<int>::max())));
    m_maxTokens->setValue(s.sampling.maxTokens);
    m_experts->setValue(moelens::effective_experts_per_token(m_model.config, s.moe));
    m_deviceLimit->setValue(groupLimited(m_model) ? moelens::effective_device_limit(m_model.config, s.moe) : m_model.n_group);
    m_disabled->setText(QString::fromStdString(moelens::format_disabled_experts(s.moe.disabled)));
    validate();
}

void CompareColumn::validate()
{
    m_experts->setSuffix(m_experts->value() == m_model.top_k ? tr(" (model)") : QString());
    m_deviceLimit->setSuffix(groupLimited(m_model) && m_deviceLimit->value() == m_model.topk_group ? tr(" (model)") : QString());
    m_settingsError.clear();
    ColumnSettings s = settings();
    try {
        s.moe.disabled = moelens::parse_disabled_experts(m_disabled->text().remove(' ').toStdString());
        moelens::check_moe_settings(m_model.config, s.moe);
    } catch (const std::exception& e) {
        m_settingsError = QString::fromStdString(e.what());
    }
    m_error->setText(m_settingsError);
    m_error->setVisible(!m_settingsError.isEmpty());
    if (m_settingsError.isEmpty()) {
        QStringList changes;
        for (const std::string& d : moelens::describe_moe_settings(m_model.config, s.moe)) changes << QString::fromStdString(d);
        m_moeLabel->setText(changes.isEmpty() ? tr("model's routing") : changes.join(QStringLiteral(" · ")));
        m_moeLabel->setToolTip(changes.isEmpty() ? tr("The model's own MoE settings") : tr("Changed MoE settings"));
        const std::uint64_t active = moelens::active_parameters(m_model, s.moe);
        m_active->setText(active == m_model.active_params_per_token
                              ? tr("active per token: %1").arg(paramsText(active))
                              : tr("active per token: %1 (model: %2)")
                                    .arg(paramsText(active), paramsText(m_model.active_params_per_token)));
    }
    emit settingsChanged();
}

void CompareColumn::setEditable(bool editable)
{
    for (QWidget* w : std::initializer_list<QWidget*>{m_preset, m_temperature, m_topK, m_topP, m_minP, m_repetition,
                                                      m_seed, m_maxTokens, m_experts, m_disabled})
        w->setEnabled(editable);
    m_deviceLimit->setEnabled(editable && groupLimited(m_model));
}

TraceShape CompareColumn::shapeFor(const moelens::MoeSettings& moe) const
{
    // The panels draw K experts per token and M groups as this column routed them.
    TraceShape shape = TraceShape::fromInfo(m_model);
    shape.topK = moelens::effective_experts_per_token(m_model.config, moe);
    if (groupLimited(m_model)) shape.topkGroup = moelens::effective_device_limit(m_model.config, moe);
    return shape;
}

void CompareColumn::beginRun()
{
    m_ranWith = settings();
    m_trace = AnswerTrace(shapeFor(m_ranWith->moe));
    m_result.reset();
    m_running = true;
    m_startedMs = QDateTime::currentMSecsSinceEpoch();
    m_text->clear();
    m_stats->setText(tr("reading the prompt..."));
    m_stop->setEnabled(true);
    m_keep->setEnabled(false);
    setEditable(false);
}

void CompareColumn::appendRow(const TokenRow& row)
{
    m_trace.append(row);
    if (row.isPrompt) return;
    m_text->moveCursor(QTextCursor::End);
    m_text->insertPlainText(row.text);
    updateStats();
}

void CompareColumn::updateStats()
{
    const std::size_t n = m_trace.tokens().size();
    const double seconds = (QDateTime::currentMSecsSinceEpoch() - m_startedMs) / 1000.0;
    m_stats->setText(tr("%n token(s) · %1 tok/s", nullptr, int(n)).arg(seconds > 0 ? n / seconds : 0.0, 0, 'f', 1));
}

void CompareColumn::finishRun(const QString& text, const TokenRows& rows, int generated, double decodeSeconds,
                              const QString& stopReason, const QString& error, const std::optional<DeviceTraffic>& devices)
{
    m_trace = AnswerTrace(m_trace.shape());
    for (const TokenRow& row : rows) m_trace.append(row);
    m_trace.setDevices(devices);
    m_running = false;
    m_stop->setEnabled(false);
    setEditable(true);
    m_text->setPlainText(text);
    moelens::storage::ComparisonResult r;
    r.text = text.toStdString();
    r.stop_reason = stopReason.toStdString();
    r.error = error.toStdString();
    r.tokens_in = m_trace.promptTokens();
    r.tokens_out = generated;
    r.decode_tokens_per_s = decodeSeconds > 0 ? generated / decodeSeconds : 0;
    r.finished_ms = QDateTime::currentMSecsSinceEpoch();
    m_result = r;
    if (!error.isEmpty()) {
        m_error->setText(error);
        m_error->show();
        m_stats->setText(tr("failed"));
        return;
    }
    QString stats = tr("%n token(s) · %1 tok/s · %2", nullptr, generated).arg(r.decode_tokens_per_s, 0, 'f', 1).arg(stopReason);
    if (devices && devices->traffic.token_layers > 0) {
        // Per token-layer, so columns that shared their prompt (counted once) still compare.
        const moelens::ExpertTraffic& t = devices->traffic;
        stats += QLatin1String(" · ") + tr("%1 devices/token-layer, %2 B dispatched per token-layer")
                                            .arg(t.mean_devices_touched(), 0, 'f', 2)
                                            .arg(double(t.dispatch_bytes()) / double(t.token_layers), 0, 'f', 0);
    }
    m_stats->setText(stats);
    m_keep->setEnabled(generated > 0);
}

void CompareColumn::showStored(const moelens::storage::StoredColumn& stored, int promptTokens)
{
    const ColumnSettings s = settings();
    m_trace = stored.trace ? AnswerTrace::fromStorage(*stored.trace, shapeFor(s.moe), promptTokens)
                           : AnswerTrace(shapeFor(s.moe));
    m_result = stored.result;
    if (!m_result) return;
    m_ranWith = s;
    m_text->setPlainText(QString::fromStdString(m_result->text));
    if (!m_result->error.empty()) {
        m_error->setText(QString::fromStdString(m_result->error));
        m_error->show();
        m_stats->setText(tr("failed"));
        return;
    }
    m_stats->setText(tr("%n token(s) · %1 tok/s · %2", nullptr, int(m_result->tokens_out))
                         .arg(m_result->decode_tokens_per_s, 0, 'f', 1)
                         .arg(QString::fromStdString(m_result->stop_reason)));
    m_keep->setEnabled(m_result->tokens_out > 0);
}

QString CompareColumn::text() const { return m_text->toPlainText(); }

void CompareColumn::setSelected(bool selected)
{
    setFrameShape(selected ? QFrame::Box : QFrame::StyledPanel);
    setLineWidth(selected ? 2 : 1);
}

bool CompareColumn::eventFilter(QObject* watched, QEvent* event)
{
    if (watched == m_text->viewport() && event->type() == QEvent::MouseButtonPress) emit selected(m_index);
    return QFrame::eventFilter(watched, event);
}

void CompareColumn::mousePressEvent(QMouseEvent* event)
{
    emit selected(m_index);
    QFrame::mousePressEvent(event);
}
