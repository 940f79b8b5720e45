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
#include <QTabWidget>
#include <QTableWidget>
#include <QToolTip>
#include <QVBoxLayout>
#include <QValueAxis>

#include <numeric>
#include <set>

#include "viz/viz_common.h"

namespace {

QTableWidget* makeTable(const QString& name, const QStringList& headers, QWidget* parent)
{
    auto* t = new QTableWidget(0, int(headers.size()), parent);
    t->setObjectName(name);
    t->setHorizontalHeaderLabels(headers);
    t->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    t->horizontalHeader()->setStretchLastSection(true);
    t->verticalHeader()->hide();
    t->setEditTriggers(QAbstractItemView::NoEditTriggers);
    return t;
}

// A count shown as text, kept exact under Qt::UserRole for whoever reads the table.
QTableWidgetItem* countItem(std::uint64_t n, const QString& text = {})
{
    auto* item = new QTableWidgetItem(text.isEmpty() ? QLocale().toString(qulonglong(n)) : text);
    item->setData(Qt::UserRole, qulonglong(n));
    item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    return item;
}

// "e0–e3, e8–e11": the experts on `device`, runs of consecutive ids joined.
QString expertRanges(const moelens::ExpertPlacement& p, int device)
{
    QStringList parts;
    for (int e = 0; e < p.n_experts; ++e) {
        if (p.device(e) != device) continue;
        int last = e;
        while (last + 1 < p.n_experts && p.device(last + 1) == device) ++last;
        parts << (last == e ? QStringLiteral("e%1").arg(e) : QStringLiteral("e%1–e%2").arg(e).arg(last));
        e = last;
    }
    return parts.join(QStringLiteral(", "));
}

std::uint64_t sum(const std::vector<std::uint64_t>& v) { return std::accumulate(v.begin(), v.end(), std::uint64_t{0}); }

}  // namespace

DevicesWidget::DevicesWidget(QWidget* parent) : QWidget(parent)
{
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    m_summary = new QLabel(this);
    m_summary->setObjectName(QStringLiteral("devicesSummary"));
    m_summary->setWordWrap(true);
    m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_chart = new QChart;
    m_chart->legend()->hide();  // one series; the axis titles and the summary name it
    m_view = new QChartView(m_chart, this);
    m_view->setObjectName(QStringLiteral("devicesChart"));
    m_view->setMinimumHeight(140);
    m_view->setMinimumWidth(240);
    m_tabs = new QTabWidget(this);
    m_placement = makeTable(QStringLiteral("devicesPlacement"),
                            {tr("Device"), tr("Experts"), tr("Weights"), tr("Expert products"), tr("Rows in"), tr("Rows out")}, this);
    m_placement->setToolTip(tr("Rows in: token rows dispatched to this device's experts from another device. "
                               "Rows out: expert outputs it sent back to the rows' home device."));
    m_traffic = makeTable(QStringLiteral("devicesTraffic"), {}, this);
    m_traffic->setToolTip(tr("Row: from device, column: to device. Each cell: rows dispatched (token rows to the "
                             "experts' device) · rows combined (expert outputs back to the home device)."));
    m_table = makeTable(QStringLiteral("devicesTokenTable"), {tr("Layer"), tr("Experts → device"), tr("Devices")}, this);
    m_tabs->addTab(m_placement, tr("Placement"));
    m_tabs->addTab(m_traffic, tr("Traffic"));
    m_tabs->addTab(m_table, tr("Token"));
    auto* save = new QPushButton(tr("Save PNG..."), this);
    auto* top = new QHBoxLayout;
    top->addWidget(m_summary, 1);
    top->addWidget(save, 0, Qt::AlignTop);
    auto* split = new QSplitter(Qt::Horizontal, this);
    split->addWidget(m_view);
    split->addWidget(m_tabs);
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 1);
    split->setSizes({350, 450});
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
    m_tabs->setCurrentWidget(m_table);
}

void DevicesWidget::refresh()
{
    resetChart(m_chart, this);
    m_bars = nullptr;
    m_placement->setRowCount(0);
    m_traffic->setRowCount(0);
    m_traffic->setColumnCount(0);
    const std::optional<DeviceTraffic>* devices = m_trace ? &m_trace->devices() : nullptr;
    if (!m_trace || (m_trace->isEmpty() && !(devices && *devices))) {
        m_summary->setText(tr("No answer yet: send a message, or click an answer."));
        fillTokenTable();
        return;
    }
    if (!*devices) {
        const TraceShape& shape = m_trace->shape();
        const QString how = shape.nGroup > 1
                                ? tr("by default as many as the model's %1 expert groups, one group each").arg(shape.nGroup)
                                : tr("this model routes without expert groups: its experts are split in contiguous blocks");
        m_summary->setText(tr("This answer ran on one device: nothing moved between devices. Settings > Virtual devices "
                              "spreads the %1 routed experts over several (%2); this panel then shows the placement and "
                              "what each token's rows cost to move. The token table shows the experts' groups.")
                               .arg(shape.nRoutedExperts)
                               .arg(how));
        fillTokenTable();
        return;
    }
    const DeviceTraffic& d = **devices;
    const moelens::ExpertTraffic& t = d.traffic;
    const int layers = std::max<int>(1, int(m_trace->shape().moeLayers.size()));
    const double tokens = double(t.token_layers) / layers;
    const double perToken = tokens > 0 ? 1.0 / tokens : 0.0;
    const QString layout = d.placement.device_limited
                               ? tr("whole expert groups per device, so a token's %1 groups are at most %1 devices").arg(d.deviceLimit)
                               : d.deviceLimit > 0 ? tr("expert groups split over devices, so the device limit is no bound")
                                                   : tr("experts in contiguous blocks (the model routes without groups)");
    QString text = tr("%1 virtual devices, %2; this answer's attention on device %3%4.")
                       .arg(d.placement.devices)
                       .arg(layout)
                       .arg(t.home)
                       .arg(d.memoryBytes ? tr(", %1 per device").arg(formatBytes(double(d.memoryBytes))) : QString());
    text += QLatin1Char(' ');
    text += tr("%1 token-layers, %2 devices each on average; dispatched %3 per token, combined %4 per token; "
               "busiest device %5× the mean.")
                .arg(QLocale().toString(qulonglong(t.token_layers)))
                .arg(t.mean_devices_touched(), 0, 'f', 2)
                .arg(formatBytes(double(t.dispatch_bytes()) * perToken))
                .arg(formatBytes(double(t.combine_bytes()) * perToken))
                .arg(t.imbalance(), 0, 'f', 2);
    if (d.placement.device_limited)
        text += QLatin1Char(' ') + tr("%n over the device limit.", nullptr, int(t.limit_exceeded));
    m_summary->setText(text);
    fillChart(d);
    fillPlacement(d);
    fillTraffic(d);
    fillTokenTable();
}

void DevicesWidget::fillChart(const DeviceTraffic& d)
{
    const moelens::ExpertTraffic& t = d.traffic;
    const int D = d.placement.devices;
    const int limit = d.placement.device_limited ? d.deviceLimit : D;
    m_bars = new QBarSet(tr("token-layers by devices touched"));
    QStringList categories;
    std::uint64_t most = 0;
    for (int n = 1; n <= D && n < int(t.touched.size()); ++n) {
        *m_bars << double(t.touched[std::size_t(n)]);
        most = std::max(most, t.touched[std::size_t(n)]);
        categories << (n <= limit ? QString::number(n) : tr("%1 (over limit)").arg(n));
    }
    m_bars->setColor(palette().color(QPalette::Highlight));
    auto* series = new QBarSeries;
    series->append(m_bars);
    m_chart->addSeries(series);
    auto* x = new QBarCategoryAxis;
    x->append(categories);
    x->setTitleText(tr("devices per token and layer"));
    auto* y = new QValueAxis;
    y->setTitleText(tr("token-layers"));
    setIntegerAxis(y, int(std::min<std::uint64_t>(most, 1u << 30)));
    m_chart->addAxis(x, Qt::AlignBottom);
    m_chart->addAxis(y, Qt::AlignLeft);
    series->attachAxis(x);
    series->attachAxis(y);
    connect(series, &QBarSeries::hovered, this, [](bool on, int index, QBarSet* set) {
        if (on) QToolTip::showText(QCursor::pos(), QObject::tr("%1 token-layers touched %2 device(s)").arg(set->at(index)).arg(index + 1));
    });
}

void DevicesWidget::fillPlacement(const DeviceTraffic& d)
{
    const moelens::ExpertPlacement& p = d.placement;
    const moelens::ExpertTraffic& t = d.traffic;
    const int D = p.devices;
    const std::uint64_t products = std::max<std::uint64_t>(1, sum(t.expert_rows));
    m_placement->setRowCount(D);
    for (int dev = 0; dev < D; ++dev) {
        std::uint64_t in = 0, out = 0;
        for (int o = 0; o < D; ++o) {
            if (o == dev) continue;
            in += t.dispatch_rows[std::size_t(o * D + dev)];
            out += t.combine_rows[std::size_t(dev * D + o)];
        }
        const std::uint64_t weights = p.weight_bytes[std::size_t(dev)];
        const std::uint64_t done = t.expert_rows[std::size_t(dev)];
        m_placement->setItem(dev, 0, new QTableWidgetItem(dev == t.home ? tr("d%1 (home)").arg(dev) : tr("d%1").arg(dev)));
        m_placement->setItem(dev, 1, new QTableWidgetItem(expertRanges(p, dev)));
        auto* w = countItem(weights, d.memoryBytes ? tr("%1 of %2").arg(formatBytes(double(weights)), formatBytes(double(d.memoryBytes)))
                                                   : formatBytes(double(weights)));
        w->setToolTip(tr("%1 parameters: the replicated part (attention, shared experts, embedding, lm_head) and its experts")
                          .arg(QLocale().toString(qulonglong(p.params[std::size_t(dev)]))));
        m_placement->setItem(dev, 2, w);
        m_placement->setItem(dev, 3, countItem(done, tr("%1 (%2%)").arg(QLocale().toString(qulonglong(done))).arg(100.0 * double(done) / double(products), 0, 'f', 1)));
        m_placement->setItem(dev, 4, countItem(in));
        m_placement->setItem(dev, 5, countItem(out));
    }
}

void DevicesWidget::fillTraffic(const DeviceTraffic& d)
{
    const moelens::ExpertTraffic& t = d.traffic;
    const int D = d.placement.devices;
    QStringList headers{tr("from \\ to")};
    for (int b = 0; b < D; ++b) headers << tr("d%1").arg(b);
    m_traffic->setColumnCount(D + 1);
    m_traffic->setHorizontalHeaderLabels(headers);
    m_traffic->setRowCount(D);
    for (int a = 0; a < D; ++a) {
        m_traffic->setItem(a, 0, new QTableWidgetItem(tr("d%1").arg(a)));
        for (int b = 0; b < D; ++b) {
            const std::uint64_t dr = t.dispatch_rows[std::size_t(a * D + b)], cr = t.combine_rows[std::size_t(a * D + b)];
            auto* item = countItem(dr, QStringLiteral("%1 · %2").arg(QLocale().toString(qulonglong(dr)), QLocale().toString(qulonglong(cr))));
            item->setData(Qt::UserRole + 1, qulonglong(cr));
            if (a == b) {
                item->setForeground(palette().color(QPalette::PlaceholderText));
                item->setToolTip(tr("on the same device: nothing moves"));
            } else {
                item->setToolTip(tr("d%1 → d%2: %3 dispatched, %4 combined")
                                     .arg(a)
                                     .arg(b)
                                     .arg(formatBytes(double(dr * t.row_bytes)), formatBytes(double(cr * t.row_bytes))));
            }
            m_traffic->setItem(a, b + 1, item);
        }
    }
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
    const std::optional<DeviceTraffic>& devices = m_trace->devices();
    const TraceShape& shape = m_trace->shape();
    m_table->setHorizontalHeaderLabels({tr("Layer"), devices ? tr("Experts → device") : tr("Experts → group"),
                                        devices ? tr("Devices") : tr("Groups")});
    m_table->setToolTip((inMessage ? tr("your message, token %1 “%2”") : tr("token %1 “%2”")).arg(t).arg(row.text));
    m_table->setRowCount(int(row.routing.size()));
    const int limit = devices ? (devices->placement.device_limited ? devices->deviceLimit : devices->placement.devices)
                              : shape.topkGroup;
    for (int i = 0; i < int(row.routing.size()); ++i) {
        const moelens::RoutingRecord& r = row.routing[std::size_t(i)];
        QStringList parts;
        std::set<int> reached;
        for (std::size_t j = 0; j < r.experts.size(); ++j) {
            const int e = r.experts[j];
            const bool placed = devices && e >= 0 && e < devices->placement.n_experts;
            const int where = placed ? devices->placement.device(e) : expertGroup(r, j, shape);
            reached.insert(where);
            parts << (devices ? tr("e%1→d%2") : tr("e%1→g%2")).arg(e).arg(where);
        }
        m_table->setItem(i, 0, new QTableWidgetItem(QString::number(r.layer)));
        m_table->setItem(i, 1, new QTableWidgetItem(parts.join(QStringLiteral(" "))));
        auto* count = new QTableWidgetItem(QStringLiteral("%1/%2").arg(reached.size()).arg(limit));
        if (int(reached.size()) > limit) count->setForeground(Qt::red);
        m_table->setItem(i, 2, count);
    }
}
