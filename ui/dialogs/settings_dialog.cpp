#include "dialogs/settings_dialog.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QInputDialog>
#include <QJsonDocument>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QThread>
#include <QVBoxLayout>

#include <limits>

#include "moelens/devices.h"

namespace {

QDoubleSpinBox* doubleBox(double min, double max, double step, int decimals, const QString& tip)
{
    auto* b = new QDoubleSpinBox;
    b->setRange(min, max);
    b->setSingleStep(step);
    b->setDecimals(decimals);
    b->setToolTip(tip);
    return b;
}

}  // namespace

SettingsDialog::SettingsDialog(const GenerationSettings& settings, const QString& chatSystemPrompt, bool hasChat,
                               const std::vector<moelens::storage::Preset>& presets, QWidget* parent)
    : QDialog(parent), m_base(settings), m_presets(presets)
{
    setWindowTitle(tr("Settings"));
    auto* layout = new QVBoxLayout(this);

    auto* sampling = new QGroupBox(tr("Sampling"), this);
    auto* form = new QFormLayout(sampling);
    m_temperature = doubleBox(0, 2, 0.05, 2, tr("0 = always the most likely token (greedy)"));
    m_topK = new QSpinBox;
    m_topK->setRange(0, 100000);
    m_topK->setToolTip(tr("Keep only the k most likely tokens; 0 = off"));
    m_topP = doubleBox(0.01, 1, 0.01, 2, tr("Keep the most likely tokens that together hold this probability; 1 = off"));
    m_minP = doubleBox(0, 1, 0.01, 2, tr("Drop tokens less likely than this fraction of the best one; 0 = off"));
    m_repetition = doubleBox(1, 2, 0.01, 2, tr("Penalise tokens already in the conversation; 1 = off"));
    m_seed = new QSpinBox;
    m_seed->setRange(-1, std::numeric_limits<int>::max());
    m_seed->setSpecialValueText(tr("random"));
    m_seed->setToolTip(tr("Same seed and prompt = same answer; \"random\" picks a new seed each time"));
    m_maxTokens = new QSpinBox;
    m_maxTokens->setRange(1, 32768);
    form->addRow(tr("Temperature:"), m_temperature);
    form->addRow(tr("Top-k:"), m_topK);
    form->addRow(tr("Top-p:"), m_topP);
    form->addRow(tr("Min-p:"), m_minP);
    form->addRow(tr("Repetition penalty:"), m_repetition);
    form->addRow(tr("Seed:"), m_seed);
    form->addRow(tr("Max tokens per answer:"), m_maxTokens);

    auto* presetRow = new QHBoxLayout;
    m_presetBox = new QComboBox;
    m_presetBox->setObjectName(QStringLiteral("presetBox"));
    for (const moelens::storage::Preset& p : m_presets) m_presetBox->addItem(QString::fromStdString(p.name));
    auto* load = new QPushButton(tr("Load"));
    auto* save = new QPushButton(tr("Save as..."));
    auto* remove = new QPushButton(tr("Delete"));
    presetRow->addWidget(m_presetBox, 1);
    presetRow->addWidget(load);
    presetRow->addWidget(save);
    presetRow->addWidget(remove);
    form->addRow(tr("Presets:"), presetRow);
    layout->addWidget(sampling);

    auto* prompts = new QGroupBox(tr("System prompt"), this);
    auto* pform = new QFormLayout(prompts);
    m_chatPrompt = new QPlainTextEdit;
    m_chatPrompt->setPlainText(chatSystemPrompt);
    m_chatPrompt->setEnabled(hasChat);
    m_chatPrompt->setPlaceholderText(hasChat ? tr("none") : tr("open a chat to give it its own system prompt"));
    m_chatPrompt->setFixedHeight(60);
    m_defaultPrompt = new QPlainTextEdit;
    m_defaultPrompt->setFixedHeight(60);
    m_defaultPrompt->setPlaceholderText(tr("none"));
    pform->addRow(tr("This chat:"), m_chatPrompt);
    pform->addRow(tr("New chats:"), m_defaultPrompt);
    layout->addWidget(prompts);

    auto* compute = new QGroupBox(tr("Compute"), this);
    auto* cform = new QFormLayout(compute);
    const moelens::DeviceReport& devices = moelens::probe_devices();
    m_threads = new QSpinBox;
    m_threads->setRange(0, 1024);
    m_threads->setSpecialValueText(tr("all (%1)").arg(devices.cpu_threads));
    m_threads->setToolTip(tr("CPU threads; applies the next time a model is loaded"));
    m_context = new QSpinBox;
    m_context->setRange(256, 1 << 20);
    m_context->setSingleStep(1024);
    m_context->setToolTip(tr("Context tokens the cache is sized for; applies the next time a model is loaded"));
    m_device = new QComboBox;
    m_device->addItem(tr("CPU (%1 threads)").arg(devices.cpu_threads));
    for (const moelens::GpuInfo& g : devices.gpus) m_device->addItem(tr("GPU %1: %2").arg(g.index).arg(QString::fromStdString(g.name)));
    m_device->setEnabled(devices.cuda_usable && !devices.gpus.empty());
    m_device->setToolTip(QString::fromStdString(devices.reason));
    m_cacheType = new QComboBox;
    m_cacheType->addItem(tr("f32 (the engine's cache type)"));
    m_cacheType->setEnabled(false);
    m_cacheType->setToolTip(tr("This engine keeps the latent cache in f32; other types are not available yet"));
    m_virtualDevices = new QSpinBox;
    m_virtualDevices->setObjectName(QStringLiteral("virtualDevices"));
    m_virtualDevices->setRange(-1, 64);
    m_virtualDevices->setSpecialValueText(tr("the model's expert groups"));
    m_virtualDevices->setToolTip(tr("Spread the routed experts over this many virtual devices (partitions of the CPU) "
                                    "and show in the Devices panel what moving each token's rows to them costs. "
                                    "0 or 1: one device. Applies at once (the chat's cache is read again)."));
    m_deviceMemory = new QDoubleSpinBox;
    m_deviceMemory->setObjectName(QStringLiteral("deviceMemory"));
    m_deviceMemory->setRange(0, 1 << 20);
    m_deviceMemory->setDecimals(1);
    m_deviceMemory->setSuffix(tr(" MiB"));
    m_deviceMemory->setSpecialValueText(tr("no limit"));
    m_deviceMemory->setToolTip(tr("Memory of each virtual device: its weights and a step's expert activations must "
                                  "fit, or that answer stops as out of memory (what a placement would need on real cards)"));
    cform->addRow(tr("CPU threads:"), m_threads);
    cform->addRow(tr("Context size:"), m_context);
    cform->addRow(tr("Device:"), m_device);
    cform->addRow(tr("Cache type:"), m_cacheType);
    cform->addRow(tr("Virtual devices:"), m_virtualDevices);
    cform->addRow(tr("Memory per device:"), m_deviceMemory);
    layout->addWidget(compute);

    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    layout->addWidget(buttons);
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    connect(load, &QPushButton::clicked, this, &SettingsDialog::loadPreset);
    connect(save, &QPushButton::clicked, this, &SettingsDialog::savePreset);
    connect(remove, &QPushButton::clicked, this, &SettingsDialog::deletePreset);
    showValues(settings);
}

void SettingsDialog::showValues(const GenerationSettings& s)
{
    m_temperature->setValue(s.temperature);
    m_topK->setValue(s.topK);
    m_topP->setValue(s.topP);
    m_minP->setValue(s.minP);
    m_repetition->setValue(s.repetitionPenalty);
    m_seed->setValue(int(std::clamp<qint64>(s.seed, -1, std::numeric_limits<int>::max())));
    m_maxTokens->setValue(s.maxTokens);
    m_defaultPrompt->setPlainText(s.systemPrompt);
    m_threads->setValue(s.threads);
    m_context->setValue(s.contextTokens);
    m_virtualDevices->setValue(s.virtualDevices);
    m_deviceMemory->setValue(s.deviceMemoryMiB);
}

GenerationSettings SettingsDialog::settings() const
{
    GenerationSettings s = m_base;
    s.temperature = m_temperature->value();
    s.topK = m_topK->value();
    s.topP = m_topP->value();
    s.minP = m_minP->value();
    s.repetitionPenalty = m_repetition->value();
    s.seed = m_seed->value();
    s.maxTokens = m_maxTokens->value();
    s.systemPrompt = m_defaultPrompt->toPlainText();
    s.threads = m_threads->value();
    s.contextTokens = m_context->value();
    s.virtualDevices = m_virtualDevices->value();
    s.deviceMemoryMiB = m_deviceMemory->value();
    return s;
}

QString SettingsDialog::chatSystemPrompt() const { return m_chatPrompt->toPlainText(); }

void SettingsDialog::loadPreset()
{
    const int i = m_presetBox->currentIndex();
    if (i < 0 || i >= int(m_presets.size())) return;
    GenerationSettings s = settings();
    s.applySampling(QJsonDocument::fromJson(QByteArray::fromStdString(m_presets[std::size_t(i)].sampling_json)).object());
    showValues(s);
}

void SettingsDialog::savePreset()
{
    bool ok = false;
    const QString name = QInputDialog::getText(this, tr("Save preset"), tr("Name:"), QLineEdit::Normal,
                                               m_presetBox->currentText(), &ok).trimmed();
    if (!ok || name.isEmpty()) return;
    const QString json = QString::fromUtf8(QJsonDocument(settings().samplingJson()).toJson(QJsonDocument::Compact));
    moelens::storage::Preset p;
    p.name = name.toStdString();
    p.sampling_json = json.toStdString();
    const int existing = m_presetBox->findText(name);
    if (existing >= 0) {
        m_presets[std::size_t(existing)] = p;
    } else {
        m_presets.push_back(p);
        m_presetBox->addItem(name);
    }
    m_presetBox->setCurrentText(name);
    emit presetSaved(name, json);
}

void SettingsDialog::deletePreset()
{
    const int i = m_presetBox->currentIndex();
    if (i < 0) return;
    emit presetDeleted(m_presetBox->currentText());
    m_presets.erase(m_presets.begin() + i);
    m_presetBox->removeItem(i);
}
