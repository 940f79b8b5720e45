#pragma once
// Expert load: how often each routed expert fired at one MoE layer, over the
// selected answer or over every answer of the chat, with the balance figures
// (max/mean and coefficient of variation) for every layer in a table below. The
// shared experts, which run for every token, are stated apart.
#include <QWidget>

#include <vector>

#include "trace/answer_trace.h"

class QBarSet;
class QChart;
class QChartView;
class QComboBox;
class QLabel;
class QTableWidget;

struct LayerLoad {
    int layer = 0;
    std::vector<int> counts;  // [n_routed_experts]
    double maxOverMean = 0;
    double cv = 0;            // population standard deviation / mean
};

// Counts per expert for every MoE layer of the given traces.
std::vector<LayerLoad> computeLoad(const std::vector<const AnswerTrace*>& traces);

class ExpertLoadWidget : public QWidget {
    Q_OBJECT

public:
    explicit ExpertLoadWidget(QWidget* parent = nullptr);

    // The selected answer; `unsaved` = not among the chat's stored traces yet (live).
    void setAnswer(const AnswerTrace* trace, bool unsaved);
    void setChatTraces(std::vector<AnswerTrace> traces);         // every stored answer of the chat
    void refresh();
    bool showingChat() const;
    int currentLayer() const;
    // What the chart shows for the current layer (for tests and the PNG).
    const std::vector<LayerLoad>& loads() const { return m_loads; }
    QBarSet* bars() const { return m_bars; }

private:
    void rebuildChart();

    const AnswerTrace* m_answer = nullptr;
    bool m_answerUnsaved = false;
    std::vector<AnswerTrace> m_chatTraces;
    std::vector<LayerLoad> m_loads;
    TraceShape m_shape;
    QComboBox* m_scope = nullptr;
    QComboBox* m_layer = nullptr;
    QChartView* m_view = nullptr;
    QChart* m_chart = nullptr;
    QBarSet* m_bars = nullptr;
    QLabel* m_summary = nullptr;
    QTableWidget* m_table = nullptr;
};
