#pragma once
// Latent cache: bytes the MLA latent cache holds after every token of the selected
// answer (prompt included), against what a plain multi-head cache and a GQA-8
// cache would hold for the same context, with the saving said in words and the
// reserved capacity of the (single) sequence.
#include <QWidget>

#include "trace/answer_trace.h"

class QChart;
class QChartView;
class QLabel;
class QLineSeries;

class LatentCacheWidget : public QWidget {
    Q_OBJECT

public:
    explicit LatentCacheWidget(QWidget* parent = nullptr);

    void setTrace(const AnswerTrace* trace);
    void refresh();
    QLabel* summary() const { return m_summary; }
    QLineSeries* latentSeries() const { return m_latent; }
    QLineSeries* mhaSeries() const { return m_mha; }
    QLineSeries* gqaSeries() const { return m_gqa; }
    double unitBytes() const { return m_unit; }  // the y axis is in bytes / unitBytes()

private:
    const AnswerTrace* m_trace = nullptr;
    QChart* m_chart = nullptr;
    QChartView* m_view = nullptr;
    QLineSeries* m_latent = nullptr;
    QLineSeries* m_mha = nullptr;
    QLineSeries* m_gqa = nullptr;
    QLabel* m_summary = nullptr;
    double m_unit = 1;
};
