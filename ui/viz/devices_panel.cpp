#include "viz/devices_panel.h"

#include <QBarCategoryAxis>
#include <QBarSeries>
#include <QBarSet>
#include <QChart>
#include <QChartView>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSplitter>
#include <QTableWidget>
#include <QToolTip>
#include <QVBoxLayout>
#include <QValueAxis>

#include <set>

#include "viz/viz_common.h"

DevicesWidget::DevicesWidget(QWidget* parent) : QWidget(parent)
{
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    m_summary = new QLabel(this);
    m_summary->setObjectName(QStringLiteral("devicesSummary"));
    m_summary->setWordWrap(true);
    m_chart = new QChart;
    m_chart->legend()->hide();  // one series; the axis titles and the summary name it
    m_view = new QChartView(m_chart, this);
    m_view->setObjectName(QStringLiteral("devicesChart"));
    m_view->setMinimumHeight(140);
    m_view->setMinimumWidth(280);
    m_table = new QTableWidget(0, 3, this);
    m_table->setObjectName(QStringLiteral("devicesTable"));
    m_table->setHorizontalHeaderLabels({tr("Layer"), tr("Experts → device"), tr("Devices")});
    m_table->horizontalHeader()->setSectionResizeMode(1, QHeaderView::Stretch);
    m_table->horizontalHeader()->setSectionResizeMode(0, QHeaderView::ResizeToContents);
    m_table->horizontalHeader()->setSectionResizeMode(2, QHeaderView::ResizeToContents);
    m_table->verticalHeader()->hide();
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    auto* save = new QPushButton(tr("Save PNG..."), this);
    auto* top = new QHBoxLayout;
    top->addWidget(m_summary, 1);
    top->addWidget(save, 0, Qt::AlignTop);
    auto* split = new QSplitter(Qt::Horizontal, this);
    split->addWidget(m_view);
    split->addWidget(m_table);
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 1);
    split->setSizes({400, 400});
    layout->addLayout(top);
    layout->addWidget(split, 1);
    connect(save, &QPushButton::clicked, this, [this] { savePanelPng(this, QStringLiteral("devices.png")); });
    refresh();
}

void DevicesWidget::setTrace(const AnswerTrace* trace)
{
    m_trace = trace;
    m_token = -1;
    m_tokenInMessage = false;
    refresh();
}

void DevicesWidget::selectToken(int t, bool inMessage)
{
    m_token = t;
    m_tokenInMessage = inMessage;
    fillTokenTable();
}

void DevicesWidget::refresh()
{
    resetChart(m_chart, this);
    m_bars = nullptr;
    if (!m_trace || m_trace->tokens().empty()) {
        m_summary->setText(tr("No routing yet: send a message, or click an answer."));
        fillTokenTable();
        return;
    }
    const TraceShape& shape = m_trace->shape();
    const int nDevices = std::max(1, shape.nGroup);
    // histogram[d-1] = (token, MoE layer) decisions that touched d devices
    std::vector<int> histogram(std::size_t(nDevices), 0);
    int over = 0, decisions = 0;
    for (const TokenRow& row : m_trace->tokens()) {
        for (const moelens::RoutingRecord& r : row.routing) {
            std::set<int> devices;
            for (std::size_t j = 0; j < r.experts.size(); ++j) devices.insert(expertDevice(r, j, shape));
            const int d = std::clamp(int(devices.size()), 1, nDevices);
            ++histogram[std::size_t(d - 1)];
            ++decisions;
            if (d > shape.topkGroup) ++over;
        }
    }
    m_bars = new QBarSet(tr("routing decisions (token × MoE layer); limit %1 of %2 devices").arg(shape.topkGroup).arg(nDevices));
    QStringList categories;
    for (int d = 1; d <= nDevices; ++d) {
        *m_bars << histogram[std::size_t(d - 1)];
        categories << (d <= shape.topkGroup ? tr("%1").arg(d) : tr("%1 (over limit)").arg(d));
    }
    m_bars->setColor(palette().color(QPalette::Highlight));
    auto* series = new QBarSeries;
    series->append(m_bars);
    m_chart->addSeries(series);
    auto* x = new QBarCategoryAxis;
    x->append(categories);
    x->setTitleText(tr("devices per token and layer"));
    auto* y = new QValueAxis;
    y->setTitleText(tr("decisions"));
    m_chart->setToolTip(m_bars->label());
    setIntegerAxis(y, *std::max_element(histogram.begin(), histogram.end()));
    m_chart->addAxis(x, Qt::AlignBottom);
    m_chart->addAxis(y, Qt::AlignLeft);
    series->attachAxis(x);
    series->attachAxis(y);
    connect(series, &QBarSeries::hovered, this, [](bool on, int index, QBarSet* set) {
        if (on) QToolTip::showText(QCursor::pos(), QObject::tr("%1 decisions touched %2 device(s)").arg(set->at(index)).arg(index + 1));
    });

    if (shape.nGroup <= 1)
        m_summary->setText(tr("This model keeps all %1 routed experts in one group, so every expert counts as one "
                              "device and device-limited routing does not apply. Models with n_group > 1 (such as "
                              "DeepSeek-V2, 8 groups, 3 per token) show here how many devices each token touched.")
                               .arg(shape.nRoutedExperts));
    else
        m_summary->setText(tr("%1 routed experts in %2 groups (one per device); each token may use at most %3 devices "
                              "per layer. %4 of %5 decisions were over the limit. Click a token in the routing map "
                              "for its experts' devices.")
                               .arg(shape.nRoutedExperts)
                               .arg(shape.nGroup)
                               .arg(shape.topkGroup)
                               .arg(over)
                               .arg(decisions));
    fillTokenTable();
}

void DevicesWidget::fillTokenTable()
{
    m_table->setRowCount(0);
    if (!m_trace) return;
    // The clicked token, else the answer's last.
    const TokenRows& list = m_tokenInMessage ? m_trace->messageTokens() : m_trace->tokens();
    const bool clicked = m_token >= 0 && m_token < int(list.size());
    const bool inMessage = clicked && m_tokenInMessage;
    const TokenRows& tokens = clicked ? list : m_trace->tokens();
    const int t = clicked ? m_token : int(tokens.size()) - 1;
    if (t < 0) return;
    const TokenRow& row = tokens[std::size_t(t)];
    m_table->setToolTip((inMessage ? tr("your message, token %1 “%2”") : tr("token %1 “%2”")).arg(t).arg(row.text));
    m_table->setRowCount(int(row.routing.size()));
    for (int i = 0; i < int(row.routing.size()); ++i) {
        const moelens::RoutingRecord& r = row.routing[std::size_t(i)];
        QStringList parts;
        std::set<int> devices;
        for (std::size_t j = 0; j < r.experts.size(); ++j) {
            const int d = expertDevice(r, j, m_trace->shape());
            devices.insert(d);
            parts << tr("e%1→d%2").arg(r.experts[j]).arg(d);
        }
        m_table->setItem(i, 0, new QTableWidgetItem(QString::number(r.layer)));
        m_table->setItem(i, 1, new QTableWidgetItem(parts.join(QStringLiteral(" "))));
        auto* count = new QTableWidgetItem(QStringLiteral("%1/%2").arg(devices.size()).arg(m_trace->shape().topkGroup));
        if (int(devices.size()) > m_trace->shape().topkGroup) count->setForeground(Qt::red);
        m_table->setItem(i, 2, count);
    }
}
