#include "viz/routing_map.h"

#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QMouseEvent>
#include <QPaintEvent>
#include <QPainter>
#include <QPushButton>
#include <QScrollArea>
#include <QScrollBar>
#include <QToolTip>
#include <QVBoxLayout>

#include <algorithm>
#include <set>

#include "viz/viz_common.h"

namespace {

constexpr int kCell = 12;       // token column width, pixels
constexpr int kLeft = 56;       // row labels
constexpr int kTop = 18;        // token index labels
constexpr int kBottom = 6;

const moelens::RoutingRecord* recordAt(const TokenRow& row, int layer)
{
    for (const moelens::RoutingRecord& r : row.routing)
        if (r.layer == layer) return &r;
    return nullptr;
}

}  // namespace

RoutingCanvas::RoutingCanvas(QWidget* parent) : QWidget(parent)
{
    setMouseTracking(true);
    setObjectName(QStringLiteral("routingCanvas"));
}

void RoutingCanvas::setTrace(const AnswerTrace* trace)
{
    m_trace = trace;
    m_selected = -1;
    tracesChanged();
}

void RoutingCanvas::setMode(Mode mode, int layer)
{
    m_mode = mode;
    m_layer = layer;
    tracesChanged();
}

void RoutingCanvas::setShowMessage(bool show)
{
    m_showMessage = show;
    tracesChanged();
}

void RoutingCanvas::setSelectedToken(int t, bool inMessage)
{
    m_selected = t;
    m_selectedInMessage = inMessage;
    repaintVisible();
}

void RoutingCanvas::fitRows(int availableHeight)
{
    const int n = std::max(1, rows());
    const int h = std::clamp((availableHeight - kTop - kBottom) / n, 8, 24);
    if (h == m_rowHeight) return;
    m_rowHeight = h;
    tracesChanged();
}

void RoutingCanvas::tracesChanged()
{
    resize(sizeHint());
    updateGeometry();
    repaintVisible();
}

void RoutingCanvas::repaintVisible() { update(visibleRegion().boundingRect()); }

int RoutingCanvas::rows() const
{
    if (!m_trace) return 0;
    return m_mode == Mode::Layer ? m_trace->shape().nRoutedExperts : int(m_trace->shape().moeLayers.size());
}

QString RoutingCanvas::rowLabel(int row) const
{
    if (m_mode == Mode::Layer) return tr("e%1").arg(row);
    return tr("L%1").arg(m_trace->shape().moeLayers[std::size_t(row)]);
}

int RoutingCanvas::messageColumns() const
{
    return m_trace && m_showMessage ? int(m_trace->messageTokens().size()) : 0;
}

int RoutingCanvas::columns() const { return m_trace ? messageColumns() + int(m_trace->tokens().size()) : 0; }

const TokenRow& RoutingCanvas::rowAtColumn(int c) const
{
    const int m = messageColumns();
    return c < m ? m_trace->messageTokens()[std::size_t(c)] : m_trace->tokens()[std::size_t(c - m)];
}

QSize RoutingCanvas::sizeHint() const
{
    return {kLeft + std::max(1, columns()) * kCell + 8, kTop + std::max(1, rows()) * m_rowHeight + kBottom};
}

int RoutingCanvas::columnAt(const QPoint& pos) const
{
    if (!m_trace || pos.x() < kLeft || pos.y() < kTop) return -1;
    const int c = (pos.x() - kLeft) / kCell;
    return c < columns() && pos.y() < kTop + rows() * m_rowHeight ? c : -1;
}

QRect RoutingCanvas::columnRect(int c) const { return QRect(kLeft + c * kCell, kTop, kCell, rows() * m_rowHeight); }

QString RoutingCanvas::tokenDetails(int t) const
{
    if (!m_trace || t < 0 || t >= int(m_trace->tokens().size())) return {};
    return details(m_trace->tokens()[std::size_t(t)], tr("token %1").arg(t));
}

QString RoutingCanvas::messageTokenDetails(int i) const
{
    if (!m_trace || i < 0 || i >= int(m_trace->messageTokens().size())) return {};
    return details(m_trace->messageTokens()[std::size_t(i)], tr("your message, token %1").arg(i));
}

QString RoutingCanvas::details(const TokenRow& row, const QString& title) const
{
    QString text = tr("<b>%1</b> (id %2) “%3”<br>").arg(title.toHtmlEscaped()).arg(row.token).arg(row.text.toHtmlEscaped());
    for (const moelens::RoutingRecord& r : row.routing) {
        QStringList parts;
        for (std::size_t j = 0; j < r.experts.size(); ++j)
            parts << QStringLiteral("e%1 %2").arg(r.experts[j]).arg(j < r.weights.size() ? r.weights[j] : 0.0f, 0, 'f', 3);
        text += tr("layer %1: %2<br>").arg(r.layer).arg(parts.join(QStringLiteral(", ")));
    }
    return text;
}

void RoutingCanvas::paintEvent(QPaintEvent* event)
{
    QPainter p(this);
    p.fillRect(rect(), palette().color(QPalette::Base));
    const QColor text = palette().color(QPalette::Text);
    if (!m_trace || columns() == 0 || rows() == 0) return;  // the widget's label says why
    const int n = columns();
    const int m = messageColumns();
    const int nRows = rows();
    QFont small = font();
    small.setPointSizeF(std::max(6.0, font().pointSizeF() * 0.75));
    p.setFont(small);

    const int rh = m_rowHeight;
    // The message's band, labelled above; answer tokens numbered from 0 after it.
    if (m > 0) {
        p.fillRect(QRect(kLeft, kTop, m * kCell, nRows * rh), palette().color(QPalette::AlternateBase));
        p.setPen(palette().color(QPalette::PlaceholderText));
        p.drawText(QRect(kLeft, 0, std::max(m * kCell, 60), kTop), Qt::AlignLeft | Qt::AlignVCenter, tr("your message"));
    }
    p.setPen(text);
    for (int t = 0; m + t < n; t += 10)
        p.drawText(QRect(kLeft + (m + t) * kCell, 0, 40, kTop), Qt::AlignLeft | Qt::AlignVCenter, QString::number(t));

    float maxWeight = 0.0f;
    for (int c = 0; c < n; ++c)
        for (const moelens::RoutingRecord& r : rowAtColumn(c).routing)
            for (float w : r.weights) maxWeight = std::max(maxWeight, w);
    if (maxWeight <= 0) maxWeight = 1;

    const QColor grid = palette().color(QPalette::Mid);
    p.setPen(Qt::NoPen);
    const QColor accent = palette().color(QPalette::Highlight);
    // Only the columns in the repainted area: a long answer has thousands.
    const int firstT = std::max(0, (event->rect().left() - kLeft) / kCell - 1);
    const int lastT = std::min(n, (event->rect().right() - kLeft) / kCell + 2);
    for (int t = firstT; t < lastT; ++t) {
        const TokenRow& row = rowAtColumn(t);
        const int x = kLeft + t * kCell;
        if (m_mode == Mode::Layer) {
            const moelens::RoutingRecord* r = recordAt(row, m_layer);
            if (!r) continue;
            for (std::size_t j = 0; j < r->experts.size(); ++j) {
                QColor c = accent;
                const float w = j < r->weights.size() ? r->weights[j] : 0.0f;
                c.setAlphaF(0.2 + 0.8 * std::clamp(w / maxWeight, 0.0f, 1.0f));
                p.fillRect(QRect(x, kTop + r->experts[j] * rh, kCell - 1, rh - 1), c);
            }
        } else {
            for (int li = 0; li < nRows; ++li) {
                const int layer = m_trace->shape().moeLayers[std::size_t(li)];
                const moelens::RoutingRecord* r = recordAt(row, layer);
                if (!r || r->experts.empty()) continue;
                QColor c;
                if (m_mode == Mode::OverviewTopExpert) {
                    c = expertColour(r->experts.front());
                } else {
                    const moelens::RoutingRecord* prev = t > 0 ? recordAt(rowAtColumn(t - 1), layer) : nullptr;
                    int changed = int(r->experts.size());
                    if (prev) {
                        const std::set<int> before(prev->experts.begin(), prev->experts.end());
                        changed = int(std::count_if(r->experts.begin(), r->experts.end(),
                                                    [&](int e) { return !before.count(e); }));
                    }
                    c = accent;
                    c.setAlphaF(0.1 + 0.9 * double(changed) / double(r->experts.size()));
                }
                p.fillRect(QRect(x, kTop + li * rh, kCell - 1, rh - 1), c);
            }
        }
    }
    p.setPen(grid);
    p.setBrush(Qt::NoBrush);
    p.drawRect(QRect(kLeft - 1, kTop - 1, n * kCell + 1, nRows * rh + 1));
    const int selected = m_selected < 0 ? -1 : m_selectedInMessage ? (m_selected < m ? m_selected : -1) : m + m_selected;
    if (selected >= 0 && selected < n) {
        QPen pen(text);
        pen.setWidth(2);
        p.setPen(pen);
        p.drawRect(columnRect(selected).adjusted(-1, -1, 0, 0));
    }
    // Row labels last, pinned to the visible left edge so they stay readable while
    // the map scrolls sideways with a long answer (every row when they fit, else every 4th).
    const int left = visibleRegion().boundingRect().left();
    p.fillRect(QRect(left, 0, kLeft - 2, height()), palette().color(QPalette::Base));
    p.setPen(text);
    const int labelStep = rh >= QFontMetrics(small).height() ? 1 : 4;
    for (int r = 0; r < nRows; r += labelStep)
        p.drawText(QRect(left, kTop + r * rh, kLeft - 6, rh), Qt::AlignRight | Qt::AlignVCenter, rowLabel(r));
}

void RoutingCanvas::mouseMoveEvent(QMouseEvent* event)
{
    const int c = columnAt(event->position().toPoint());
    if (c < 0) {
        QToolTip::hideText();
        return;
    }
    const int m = messageColumns();
    QToolTip::showText(event->globalPosition().toPoint(), c < m ? messageTokenDetails(c) : tokenDetails(c - m), this);
}

void RoutingCanvas::mousePressEvent(QMouseEvent* event)
{
    const int c = columnAt(event->position().toPoint());
    if (c < 0) return;
    const int m = messageColumns();
    const bool inMessage = c < m;
    const int t = inMessage ? c : c - m;
    setSelectedToken(t, inMessage);
    emit tokenClicked(t, inMessage);
}

RoutingMapWidget::RoutingMapWidget(QWidget* parent) : QWidget(parent)
{
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    auto* bar = new QHBoxLayout;
    m_mode = new QComboBox(this);
    m_mode->setObjectName(QStringLiteral("routingMode"));
    m_mode->addItem(tr("One layer: tokens × experts"));
    m_mode->addItem(tr("All layers: top-1 expert"));
    m_mode->addItem(tr("All layers: experts changed"));
    m_mode->setToolTip(tr("Cell shade = gate weight; overviews colour each layer by the top-1 expert, "
                          "or by how many experts differ from the previous token's"));
    m_layer = new QComboBox(this);
    m_layer->setObjectName(QStringLiteral("routingLayer"));
    m_layer->setToolTip(tr("MoE layer shown"));
    m_showMessage = new QCheckBox(tr("Your message"), this);
    m_showMessage->setObjectName(QStringLiteral("routingShowMessage"));
    m_showMessage->setChecked(true);
    m_showMessage->setToolTip(tr("Also draw the prompt tokens of the message answered, before the answer"));
    auto* save = new QPushButton(tr("Save PNG..."), this);
    bar->addWidget(m_mode, 1);
    bar->addWidget(m_layer);
    bar->addWidget(m_showMessage);
    bar->addWidget(save);
    layout->addLayout(bar);
    m_source = new QLabel(this);
    m_source->setForegroundRole(QPalette::PlaceholderText);
    m_source->setWordWrap(true);
    layout->addWidget(m_source);
    m_canvas = new RoutingCanvas;
    m_scroll = new QScrollArea(this);
    m_scroll->setWidget(m_canvas);
    m_scroll->setWidgetResizable(false);
    m_scroll->setBackgroundRole(QPalette::Base);
    layout->addWidget(m_scroll, 1);
    m_scroll->viewport()->installEventFilter(this);

    connect(m_mode, &QComboBox::currentIndexChanged, this, &RoutingMapWidget::applyMode);
    connect(m_layer, &QComboBox::currentIndexChanged, this, &RoutingMapWidget::applyMode);
    connect(m_showMessage, &QCheckBox::toggled, this, [this](bool show) {
        m_canvas->setShowMessage(show);
        showSource();
    });
    connect(save, &QPushButton::clicked, this, [this] { savePanelPng(this, QStringLiteral("routing-map.png")); });
    connect(m_canvas, &RoutingCanvas::tokenClicked, this, &RoutingMapWidget::tokenSelected);
    // The pinned row labels are drawn at the visible left edge: repaint on scroll.
    connect(m_scroll->horizontalScrollBar(), &QScrollBar::valueChanged, m_canvas, &RoutingCanvas::repaintVisible);
    setTrace(nullptr, {});
}

void RoutingMapWidget::setTrace(const AnswerTrace* trace, const QString& source)
{
    m_trace = trace;
    m_sourceText = source;
    m_canvas->setTrace(trace);
    showSource();
    rebuildLayers();
    applyMode();
}

void RoutingMapWidget::rebuildLayers()
{
    const int previous = m_layer->currentData().isValid() ? m_layer->currentData().toInt() : -1;
    QSignalBlocker block(m_layer);
    m_layer->clear();
    if (!m_trace) return;
    for (int layer : m_trace->shape().moeLayers) m_layer->addItem(tr("layer %1").arg(layer), layer);
    const int idx = m_layer->findData(previous);
    m_layer->setCurrentIndex(idx >= 0 ? idx : 0);
}

int RoutingMapWidget::currentLayer() const { return m_layer->currentData().isValid() ? m_layer->currentData().toInt() : -1; }

void RoutingMapWidget::applyMode()
{
    const auto mode = static_cast<RoutingCanvas::Mode>(m_mode->currentIndex());
    m_layer->setEnabled(mode == RoutingCanvas::Mode::Layer);
    m_canvas->setMode(mode, currentLayer());
    fitRows();
    showSource();
    emit layerChanged(currentLayer());
}

void RoutingMapWidget::showSource()
{
    const bool empty = m_canvas->columns() == 0;
    m_sourceShowsEmpty = empty;
    QString text = empty && m_sourceText.isEmpty()
                       ? tr("No routing yet: send a message, or click an answer to replay its stored routing.")
                       : m_sourceText;
    if (!empty) {
        const QString legends[] = {
            tr("Shade = gate weight; hover a token for every layer's experts."),
            tr("Colour = the token's top-1 expert at each layer; hover for the ids."),
            tr("Shade = how many of the token's experts differ from the previous token's."),
        };
        text += (text.isEmpty() ? QString() : QStringLiteral(" ")) + legends[std::clamp(m_mode->currentIndex(), 0, 2)];
        if (m_canvas->messageColumns() > 0) text += tr(" The tinted band is your message, read before the answer.");
    }
    m_source->setText(text);
    m_source->setVisible(!text.isEmpty());
}

void RoutingMapWidget::tokensAppended()
{
    if (m_sourceShowsEmpty && m_canvas->columns() > 0) showSource();
    QScrollBar* h = m_scroll->horizontalScrollBar();
    const bool follow = h->value() >= h->maximum() - 20;
    if (m_layer->count() == 0) rebuildLayers(), applyMode();
    m_canvas->tracesChanged();
    if (follow) h->setValue(h->maximum());
}

// Rows follow the height the scroll area shows, so they are refitted whenever its
// viewport changes size (dock resized, panel shown).
bool RoutingMapWidget::eventFilter(QObject* watched, QEvent* event)
{
    if (watched == m_scroll->viewport() && event->type() == QEvent::Resize) fitRows();
    return QWidget::eventFilter(watched, event);
}

void RoutingMapWidget::fitRows()
{
    m_canvas->fitRows(m_scroll->viewport()->height() - m_scroll->horizontalScrollBar()->sizeHint().height());
}

void RoutingMapWidget::selectToken(int t, bool inMessage) { m_canvas->setSelectedToken(t, inMessage); }
