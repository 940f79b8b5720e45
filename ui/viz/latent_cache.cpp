#include "viz/latent_cache.h"

#include <QChart>
#include <QChartView>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineSeries>
#include <QPushButton>
#include <QToolTip>
#include <QVBoxLayout>
#include <QValueAxis>

#include "viz/viz_common.h"

namespace {

std::pair<double, QString> unitFor(double maxBytes)
{
    if (maxBytes >= 1024.0 * 1024 * 1024) return {1024.0 * 1024 * 1024, QObject::tr("GiB")};
    if (maxBytes >= 1024.0 * 1024) return {1024.0 * 1024, QObject::tr("MiB")};
    return {1024.0, QObject::tr("KiB")};
}

}  // namespace

LatentCacheWidget::LatentCacheWidget(QWidget* parent) : QWidget(parent)
{
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    m_chart = new QChart;
    m_chart->legend()->setAlignment(Qt::AlignBottom);
    m_view = new QChartView(m_chart, this);
    m_view->setObjectName(QStringLiteral("cacheChart"));
    m_view->setRenderHint(QPainter::Antialiasing);
    m_view->setMinimumHeight(150);
    m_summary = new QLabel(this);
    m_summary->setObjectName(QStringLiteral("cacheSummary"));
    m_summary->setWordWrap(true);
    m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* save = new QPushButton(tr("Save PNG..."), this);
    // Chart and words side by side: the panel is usually a wide, short bottom dock.
    auto* words = new QVBoxLayout;
    words->addWidget(m_summary);
    words->addStretch();
    words->addWidget(save, 0, Qt::AlignRight);
    layout->setDirection(QBoxLayout::LeftToRight);
    layout->addWidget(m_view, 3);
    layout->addLayout(words, 2);
    connect(save, &QPushButton::clicked, this, [this] { savePanelPng(this, QStringLiteral("latent-cache.png")); });
    refresh();
}

void LatentCacheWidget::setTrace(const AnswerTrace* trace)
{
    m_trace = trace;
    refresh();
}

void LatentCacheWidget::refresh()
{
    resetChart(m_chart, this);
    m_latent = m_mha = m_gqa = nullptr;
    const std::vector<moelens::CacheStats> empty;
    const std::vector<moelens::CacheStats>& series = m_trace ? m_trace->cacheSeries() : empty;
    if (series.empty()) {
        m_summary->setText(m_trace && !m_trace->tokens().empty()
                               ? tr("The cache sizes of this stored answer are unknown: its model's config.json "
                                    "could not be read.")
                               : tr("No cache figures yet: send a message, or click an answer."));
        return;
    }
    const moelens::CacheStats& last = series.back();
    const auto [unit, unitName] = unitFor(double(std::max(last.mha_equivalent_bytes, last.latent_bytes_used)));
    m_unit = unit;

    m_latent = new QLineSeries;
    m_latent->setName(tr("MLA latent"));
    m_mha = new QLineSeries;
    m_mha->setName(tr("multi-head (MHA)"));
    m_gqa = new QLineSeries;
    m_gqa->setName(tr("GQA-8"));
    for (const moelens::CacheStats& c : series) {
        m_latent->append(c.tokens_held, double(c.latent_bytes_used) / unit);
        m_mha->append(c.tokens_held, double(c.mha_equivalent_bytes) / unit);
        m_gqa->append(c.tokens_held, double(c.gqa8_equivalent_bytes) / unit);
    }
    for (QLineSeries* s : {m_mha, m_gqa, m_latent}) {
        m_chart->addSeries(s);
        connect(s, &QLineSeries::hovered, this, [this, s, unitName](const QPointF& p, bool on) {
            if (on) QToolTip::showText(QCursor::pos(), tr("%1\n%2 tokens: %3 %4").arg(s->name()).arg(qRound(p.x())).arg(p.y(), 0, 'f', 2).arg(unitName));
        });
    }
    // Pens are set after addSeries, which applies the chart theme. Fixed colours,
    // readable on light and dark backgrounds: the latent cache in the accent colour
    // and thick; GQA-8 dashed on top of MHA (equal for models with 8 heads or fewer,
    // and both stay visible).
    QPen latentPen(palette().color(QPalette::Highlight));
    latentPen.setWidth(3);
    m_latent->setPen(latentPen);
    QPen mhaPen(QColor(230, 120, 40));
    mhaPen.setWidth(2);
    m_mha->setPen(mhaPen);
    QPen gqaPen(QColor(60, 170, 90));
    gqaPen.setWidth(2);
    gqaPen.setStyle(Qt::DashLine);
    m_gqa->setPen(gqaPen);
    auto* x = new QValueAxis;
    x->setTitleText(tr("tokens in the context"));
    setIntegerAxis(x, last.tokens_held);
    auto* y = new QValueAxis;
    y->setTitleText(unitName);
    y->setLabelFormat(QStringLiteral("%.1f"));
    y->setRange(0, double(std::max(last.mha_equivalent_bytes, last.latent_bytes_used)) / unit * 1.05 + 1e-9);
    m_chart->addAxis(x, Qt::AlignBottom);
    m_chart->addAxis(y, Qt::AlignLeft);
    for (QLineSeries* s : {m_mha, m_gqa, m_latent}) {
        s->attachAxis(x);
        s->attachAxis(y);
    }

    const auto saved = [&](std::uint64_t other) {
        return other > 0 ? 100.0 * (1.0 - double(last.latent_bytes_used) / double(other)) : 0.0;
    };
    QString text = tr("After %1 tokens (%2 prompt, %3 answer) the latent cache holds <b>%4</b>; a plain multi-head "
                      "cache would hold %5 (<b>%6% saved</b>) and a GQA-8 cache %7 (%8% saved).")
                       .arg(last.tokens_held)
                       .arg(last.tokens_held - int(m_trace->tokens().size()))
                       .arg(m_trace->tokens().size())
                       .arg(formatBytes(double(last.latent_bytes_used)))
                       .arg(formatBytes(double(last.mha_equivalent_bytes)))
                       .arg(saved(last.mha_equivalent_bytes), 0, 'f', 1)
                       .arg(formatBytes(double(last.gqa8_equivalent_bytes)))
                       .arg(saved(last.gqa8_equivalent_bytes), 0, 'f', 1);
    if (last.gqa8_equivalent_bytes == last.mha_equivalent_bytes)
        text += tr(" (This model has at most 8 attention heads, so a GQA-8 cache is as large as the multi-head one.)");
    if (last.blocks_held > 0)
        text += tr(" The cache is paged: this chat holds %1 blocks of %2 tokens (%3 reserved, %4% used)%5; "
                   "the pool has %6 blocks in use and %7 free (%8 allocated).")
                    .arg(last.blocks_held)
                    .arg(last.block_tokens)
                    .arg(formatBytes(double(last.latent_bytes_reserved)))
                    .arg(100.0 * last.tokens_held / std::max(1, last.capacity_tokens), 0, 'f', 1)
                    .arg(last.blocks_shared > 0 ? tr(", %1 of them shared with another sequence").arg(last.blocks_shared)
                                                : QString())
                    .arg(last.pool_blocks_used)
                    .arg(last.pool_blocks_free)
                    .arg(formatBytes(double(last.pool_bytes)));
    else if (last.capacity_tokens > 0)
        text += tr(" %1 in the device's cache for %2 tokens.")
                    .arg(formatBytes(double(last.latent_bytes_reserved)))
                    .arg(last.capacity_tokens);
    else
        text += tr(" (Replayed from the stored answer: used bytes follow from the model's sizes; the reserved "
                   "capacity was not recorded.)");
    m_summary->setText(text);
}
