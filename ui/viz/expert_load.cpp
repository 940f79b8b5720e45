#include "viz/expert_load.h"

#include <QBarCategoryAxis>
#include <QBarSeries>
#include <QBarSet>
#include <QChart>
#include <QChartView>
#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSplitter>
#include <QTableWidget>
#include <QToolTip>
#include <QVBoxLayout>
#include <QValueAxis>

#include <cmath>

#include "viz/viz_common.h"

std::vector<LayerLoad> computeLoad(const std::vector<const AnswerTrace*>& traces)
{
    std::vector<LayerLoad> out;
    if (traces.empty()) return out;
    const TraceShape& shape = traces.front()->shape();
    for (int layer : shape.moeLayers) {
        LayerLoad l;
        l.layer = layer;
        l.counts.assign(std::size_t(std::max(0, shape.nRoutedExperts)), 0);
        out.push_back(std::move(l));
    }
    for (const AnswerTrace* trace : traces) {
        for (const TokenRow& row : trace->tokens()) {
            for (const moelens::RoutingRecord& r : row.routing) {
                const int li = traces.front()->moeIndex(r.layer);
                if (li < 0) continue;
                std::vector<int>& counts = out[std::size_t(li)].counts;
                for (int e : r.experts)
                    if (e >= 0 && e < int(counts.size())) ++counts[std::size_t(e)];
            }
        }
    }
    for (LayerLoad& l : out) {
        if (l.counts.empty()) continue;
        double sum = 0, maxv = 0;
        for (int c : l.counts) sum += c, maxv = std::max(maxv, double(c));
        const double mean = sum / double(l.counts.size());
        double var = 0;
        for (int c : l.counts) var += (c - mean) * (c - mean);
        var /= double(l.counts.size());
        l.maxOverMean = mean > 0 ? maxv / mean : 0;
        l.cv = mean > 0 ? std::sqrt(var) / mean : 0;
    }
    return out;
}

ExpertLoadWidget::ExpertLoadWidget(QWidget* parent) : QWidget(parent)
{
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    auto* bar = new QHBoxLayout;
    m_scope = new QComboBox(this);
    m_scope->setObjectName(QStringLiteral("loadScope"));
    m_scope->addItems({tr("This answer"), tr("This chat")});
    m_layer = new QComboBox(this);
    m_layer->setObjectName(QStringLiteral("loadLayer"));
    auto* save = new QPushButton(tr("Save PNG..."), this);
    bar->addWidget(m_scope, 1);
    bar->addWidget(m_layer, 1);
    bar->addWidget(save);
    layout->addLayout(bar);

    m_chart = new QChart;
    m_chart->legend()->setVisible(true);
    m_chart->legend()->setAlignment(Qt::AlignBottom);
    m_view = new QChartView(m_chart, this);
    m_view->setObjectName(QStringLiteral("loadChart"));
    m_view->setRenderHint(QPainter::Antialiasing);
    m_view->setMinimumHeight(220);
    m_summary = new QLabel(this);
    m_summary->setObjectName(QStringLiteral("loadSummary"));
    m_summary->setWordWrap(true);
    m_table = new QTableWidget(0, 3, this);
    m_table->setObjectName(QStringLiteral("loadTable"));
    m_table->setHorizontalHeaderLabels({tr("Layer"), tr("max/mean"), tr("CV")});
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
    m_table->verticalHeader()->hide();
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setMaximumHeight(150);
    m_table->setToolTip(tr("Balance per MoE layer: max/mean = 1 and CV = 0 mean every expert fired equally often"));
    auto* split = new QSplitter(Qt::Vertical, this);
    split->addWidget(m_view);
    split->addWidget(m_table);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 1);
    layout->addWidget(split, 1);
    layout->addWidget(m_summary);

    connect(m_scope, &QComboBox::currentIndexChanged, this, &ExpertLoadWidget::refresh);
    connect(m_layer, &QComboBox::currentIndexChanged, this, &ExpertLoadWidget::rebuildChart);
    connect(m_table, &QTableWidget::cellClicked, this, [this](int row, int) { m_layer->setCurrentIndex(row); });
    connect(save, &QPushButton::clicked, this, [this] { savePanelPng(this, QStringLiteral("expert-load.png")); });
    refresh();
}

void ExpertLoadWidget::setAnswer(const AnswerTrace* trace, bool unsaved)
{
    m_answer = trace;
    m_answerUnsaved = unsaved;
    refresh();
}

void ExpertLoadWidget::setChatTraces(std::vector<AnswerTrace> traces)
{
    m_chatTraces = std::move(traces);
    if (showingChat()) refresh();
}

bool ExpertLoadWidget::showingChat() const { return m_scope->currentIndex() == 1; }

int ExpertLoadWidget::currentLayer() const { return m_layer->currentData().isValid() ? m_layer->currentData().toInt() : -1; }

void ExpertLoadWidget::refresh()
{
    std::vector<const AnswerTrace*> traces;
    if (showingChat()) {
        for (const AnswerTrace& t : m_chatTraces) traces.push_back(&t);
        // The answer being written is not stored yet: count it too.
        if (m_answer && m_answerUnsaved && !m_answer->tokens().empty()) traces.push_back(m_answer);
    } else if (m_answer) {
        traces.push_back(m_answer);
    }
    m_loads = computeLoad(traces);
    m_shape = traces.empty() ? TraceShape{} : traces.front()->shape();

    const int previous = currentLayer();
    {
        QSignalBlocker block(m_layer);
        m_layer->clear();
        for (const LayerLoad& l : m_loads) m_layer->addItem(tr("layer %1").arg(l.layer), l.layer);
        const int idx = m_layer->findData(previous);
        m_layer->setCurrentIndex(idx >= 0 ? idx : 0);
    }
    m_table->setRowCount(int(m_loads.size()));
    for (int i = 0; i < int(m_loads.size()); ++i) {
        const LayerLoad& l = m_loads[std::size_t(i)];
        m_table->setItem(i, 0, new QTableWidgetItem(QString::number(l.layer)));
        m_table->setItem(i, 1, new QTableWidgetItem(QString::number(l.maxOverMean, 'f', 2)));
        m_table->setItem(i, 2, new QTableWidgetItem(QString::number(l.cv, 'f', 2)));
    }
    rebuildChart();
}

void ExpertLoadWidget::rebuildChart()
{
    resetChart(m_chart, this);
    m_bars = nullptr;
    const int li = m_layer->currentIndex();
    if (li < 0 || li >= int(m_loads.size())) {
        m_summary->setText(tr("No routing yet: send a message, or click an answer to see its expert load."));
        return;
    }
    const LayerLoad& load = m_loads[std::size_t(li)];
    m_bars = new QBarSet(tr("times chosen at layer %1 (%2)").arg(load.layer).arg(showingChat() ? tr("this chat") : tr("this answer")));
    m_bars->setColor(palette().color(QPalette::Highlight));
    QStringList categories;
    int total = 0;
    for (std::size_t e = 0; e < load.counts.size(); ++e) {
        *m_bars << load.counts[e];
        total += load.counts[e];
        // Label every expert when few, else every 8th; category names must be
        // unique, so the unlabelled ones are runs of zero-width spaces (the
        // tooltip names every bar).
        const bool labelled = load.counts.size() <= 32 || e % 8 == 0;
        categories << (labelled ? QString::number(e) : QString(int(e) + 1, QChar(0x200B)));
    }
    auto* series = new QBarSeries;
    series->append(m_bars);
    series->setBarWidth(0.9);
    m_chart->addSeries(series);
    auto* x = new QBarCategoryAxis;
    x->append(categories);
    x->setTitleText(tr("routed expert"));
    auto* y = new QValueAxis;
    y->setTitleText(tr("tokens"));
    setIntegerAxis(y, load.counts.empty() ? 1 : *std::max_element(load.counts.begin(), load.counts.end()));
    m_chart->addAxis(x, Qt::AlignBottom);
    m_chart->addAxis(y, Qt::AlignLeft);
    series->attachAxis(x);
    series->attachAxis(y);
    connect(series, &QBarSeries::hovered, this, [this, layer = load.layer](bool on, int index, QBarSet* set) {
        if (on) QToolTip::showText(QCursor::pos(), tr("layer %1, expert %2: chosen %3 times").arg(layer).arg(index).arg(set->at(index)));
    });

    const int tokens = m_shape.topK > 0 ? total / m_shape.topK : 0;
    QString shared = m_shape.nSharedExperts > 0
                         ? tr("%n shared expert(s) ran for every one of the %1 tokens (not counted above).", nullptr,
                              m_shape.nSharedExperts)
                               .arg(tokens)
                         : tr("This model has no shared experts.");
    m_summary->setText(tr("Balance at layer %1: max/mean %2, coefficient of variation %3. %4")
                           .arg(load.layer)
                           .arg(load.maxOverMean, 0, 'f', 2)
                           .arg(load.cv, 0, 'f', 2)
                           .arg(shared));
}
