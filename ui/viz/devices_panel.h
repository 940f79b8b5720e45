#pragma once
// Devices: with device-limited routing (DeepSeek-V2's n_group expert groups, one
// per device, each token allowed topk_group of them), which device each chosen
// expert lives on, and how many devices each token touched against the limit.
#include <QWidget>

#include "trace/answer_trace.h"

class QBarSet;
class QChart;
class QChartView;
class QLabel;
class QTableWidget;

class DevicesWidget : public QWidget {
    Q_OBJECT

public:
    explicit DevicesWidget(QWidget* parent = nullptr);

    void setTrace(const AnswerTrace* trace);
    void refresh();
    // Answer token t, or the answered message's token t when inMessage.
    void selectToken(int t, bool inMessage = false);
    QBarSet* histogram() const { return m_bars; }

private:
    void fillTokenTable();

    const AnswerTrace* m_trace = nullptr;
    int m_token = -1;
    bool m_tokenInMessage = false;
    QLabel* m_summary = nullptr;
    QChart* m_chart = nullptr;
    QChartView* m_view = nullptr;
    QBarSet* m_bars = nullptr;
    QTableWidget* m_table = nullptr;
};
