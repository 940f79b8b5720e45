#pragma once
// One column of the compare view: its settings (a preset, inline sampling, the MoE
// settings with the model's own values marked) above its streamed answer, numbers
// and buttons. Owns the column's routing trace, which the main window's panels may
// draw (the pointer stays valid for the widget's life).
#include <QFrame>

#include <memory>
#include <optional>
#include <vector>

#include "compare/column_settings.h"
#include "moelens/model.h"
#include "moelens_storage/records.h"
#include "trace/answer_trace.h"

class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QSpinBox;
class QToolButton;

class CompareColumn : public QFrame {
    Q_OBJECT

public:
    CompareColumn(int index, const moelens::ModelInfo& model, const ColumnSettings& settings,
                  const std::vector<moelens::storage::Preset>& presets, QWidget* parent = nullptr);

    int index() const { return m_index; }
    QString label() const { return columnLetter(m_index); }
    // The settings as edited; with an error message when they cannot run.
    ColumnSettings settings() const;
    QString settingsError() const { return m_settingsError; }
    void setSettings(const ColumnSettings& s);
    void setEditable(bool editable);  // not while running

    // Running: a fresh trace, then rows as they stream, then the result (which
    // replaces the streamed rows with the engine's complete ones).
    void beginRun();
    void appendRow(const TokenRow& row);
    void finishRun(const QString& text, const TokenRows& rows, int generated, double decodeSeconds,
                   const QString& stopReason, const QString& error, const std::optional<DeviceTraffic>& devices = {});
    // A stored column (reopened comparison).
    void showStored(const moelens::storage::StoredColumn& stored, int promptTokens);

    bool isRunning() const { return m_running; }
    bool hasResult() const { return m_result.has_value(); }
    // The settings the shown result was produced with (the form may have changed since).
    const std::optional<ColumnSettings>& ranWith() const { return m_ranWith; }
    const AnswerTrace& trace() const { return m_trace; }
    QString text() const;
    std::optional<moelens::storage::ComparisonResult> result() const { return m_result; }
    void setSelected(bool selected);

signals:
    void stopRequested(int index);
    void keepRequested(int index);
    void selected(int index);
    void settingsChanged();

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;
    void mousePressEvent(QMouseEvent* event) override;

private:
    QWidget* buildSettings(const std::vector<moelens::storage::Preset>& presets);
    void applyPreset(int index);
    void validate();
    void updateStats();
    TraceShape shapeFor(const moelens::MoeSettings& moe) const;

    int m_index;
    moelens::ModelInfo m_model;
    std::vector<moelens::storage::Preset> m_presets;
    QLabel* m_title = nullptr;
    QLabel* m_moeLabel = nullptr;
    QComboBox* m_preset = nullptr;
    QDoubleSpinBox* m_temperature = nullptr;
    QSpinBox* m_topK = nullptr;
    QDoubleSpinBox* m_topP = nullptr;
    QDoubleSpinBox* m_minP = nullptr;
    QDoubleSpinBox* m_repetition = nullptr;
    QSpinBox* m_seed = nullptr;
    QSpinBox* m_maxTokens = nullptr;
    QSpinBox* m_experts = nullptr;
    QSpinBox* m_deviceLimit = nullptr;
    QLineEdit* m_disabled = nullptr;
    QLabel* m_error = nullptr;
    QPlainTextEdit* m_text = nullptr;
    QLabel* m_stats = nullptr;
    QLabel* m_active = nullptr;
    QToolButton* m_stop = nullptr;
    QToolButton* m_keep = nullptr;
    QString m_settingsError;
    AnswerTrace m_trace;
    bool m_running = false;
    qint64 m_startedMs = 0;
    std::optional<moelens::storage::ComparisonResult> m_result;
    std::optional<ColumnSettings> m_ranWith;
};
