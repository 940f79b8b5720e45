#pragma once
// Settings: sampling, the chat's system prompt, named presets, CPU threads, device
// and cache type. Presets are saved or deleted at once (signals); the rest applies
// on OK.
#include <QDialog>

#include <vector>

#include "dialogs/generation_settings.h"
#include "moelens_storage/records.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QPlainTextEdit;
class QSpinBox;

class SettingsDialog : public QDialog {
    Q_OBJECT

public:
    SettingsDialog(const GenerationSettings& settings, const QString& chatSystemPrompt, bool hasChat,
                   const std::vector<moelens::storage::Preset>& presets, QWidget* parent = nullptr);

    GenerationSettings settings() const;
    QString chatSystemPrompt() const;

signals:
    void presetSaved(const QString& name, const QString& samplingJson);
    void presetDeleted(const QString& name);

private:
    void showValues(const GenerationSettings& s);
    void loadPreset();
    void savePreset();
    void deletePreset();

    GenerationSettings m_base;
    std::vector<moelens::storage::Preset> m_presets;
    QDoubleSpinBox* m_temperature = nullptr;
    QSpinBox* m_topK = nullptr;
    QDoubleSpinBox* m_topP = nullptr;
    QDoubleSpinBox* m_minP = nullptr;
    QDoubleSpinBox* m_repetition = nullptr;
    QSpinBox* m_seed = nullptr;
    QSpinBox* m_maxTokens = nullptr;
    QPlainTextEdit* m_chatPrompt = nullptr;
    QPlainTextEdit* m_defaultPrompt = nullptr;
    QComboBox* m_presetBox = nullptr;
    QSpinBox* m_threads = nullptr;
    QSpinBox* m_context = nullptr;
    QComboBox* m_device = nullptr;
    QComboBox* m_cacheType = nullptr;
    QSpinBox* m_virtualDevices = nullptr;
    QDoubleSpinBox* m_deviceMemory = nullptr;
};
