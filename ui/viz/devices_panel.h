#pragma once
// Devices: where the routed experts live (the engine's placement over virtual
// devices) and what this answer's exchange moved: rows dispatched and combined
// per device pair, expert products and weights per device, how many devices each
// token touched against its device limit. Live while an answer is written, and
// for stored answers (their run keeps the figures). Without virtual devices it
// says so, and the token table shows the experts' groups.
#include <QWidget>

#include "trace/answer_trace.h"

class QBarSet;
class QChart;
class QChartView;
class QLabel;
class QTabWidget;
class QTableWidget;

class DevicesWidget : public QWidget {
    Q_OBJECT

public:
    explicit DevicesWidget(QWidget* parent = nullptr);

    void setTrace(const AnswerTrace* trace);
    void refresh();
    // Answer token t, or the answered message's token t when inMessage.
    void selectToken(int t, bool inMessage = false);
    // Devices touched per (token, MoE layer), index d-1 for d devices: the engine's count.
    QBarSet* histogram() const { return m_bars; }
    QLabel* summary() const { return m_summary; }
    QTableWidget* placementTable() const { return m_placement; }
    QTableWidget* trafficTable() const { return m_traffic; }
    QTableWidget* tokenTable() const { return m_table; }

private:
    void fillChart(const DeviceTraffic& d);
    void fillPlacement(const DeviceTraffic& d);
    void fillTraffic(const DeviceTraffic& d);
    void fillTokenTable();

    const AnswerTrace* m_trace = nullptr;
    int m_token = -1;
    bool m_tokenInMessage = false;
    QLabel* m_summary = nullptr;
    QChart* m_chart = nullptr;
    QChartView* m_view = nullptr;
    QBarSet* m_bars = nullptr;
    QTabWidget* m_tabs = nullptr;
    QTableWidget* m_placement = nullptr;
    QTableWidget* m_traffic = nullptr;
    QTableWidget* m_table = nullptr;
};
