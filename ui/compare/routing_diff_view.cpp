#include "compare/routing_diff_view.h"

#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QTableWidget>
#include <QVBoxLayout>

#include "compare/column_settings.h"

namespace {

QTableWidgetItem* valueItem(const QString& text, double value, const QString& tip = {})
{
    auto* item = new QTableWidgetItem(text);
    item->setData(Qt::UserRole, value);
    item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsSelectable);
    if (!tip.isEmpty()) item->setToolTip(tip);
    return item;
}

QString percent(double share) { return QStringLiteral("%1%").arg(100.0 * share, 0, 'f', 0); }

QStringList layerRows(const std::vector<int>& layers)
{
    QStringList rows;
    for (int l : layers) rows << QObject::tr("layer %1").arg(l);
    rows << QObject::tr("mean");
    return rows;
}

QTableWidget* makeTable(QWidget* parent, const QString& name, const QString& tip)
{
    auto* t = new QTableWidget(parent);
    t->setObjectName(name);
    t->setToolTip(tip);
    t->setEditTriggers(QAbstractItemView::NoEditTriggers);
    t->verticalHeader()->setDefaultSectionSize(22);
    t->horizontalHeader()->setDefaultSectionSize(68);
    return t;
}

}  // namespace

RoutingDiffView::RoutingDiffView(QWidget* parent) : QWidget(parent)
{
    m_overlap = makeTable(this, QStringLiteral("overlapTable"),
                          tr("Jaccard overlap of the experts two columns used over their generated tokens, per MoE "
                             "layer: shared experts / experts either used (1 = the same set, 0 = none in common)"));
    m_columns = makeTable(this, QStringLiteral("columnTable"),
                          tr("Only: experts this column used that no other column used (hover for their ids). Drift: "
                             "share of the tokens both saw alike whose expert set differs from the default column's"));
    m_notes = new QLabel(this);
    m_notes->setObjectName(QStringLiteral("diffNotes"));
    m_notes->setWordWrap(true);
    m_notes->setTextInteractionFlags(Qt::TextSelectableByMouse);

    auto* overlapBox = new QVBoxLayout;
    overlapBox->addWidget(new QLabel(tr("<b>Expert overlap (Jaccard)</b>"), this));
    overlapBox->addWidget(m_overlap);
    auto* columnBox = new QVBoxLayout;
    columnBox->addWidget(new QLabel(tr("<b>Only in this column · drift from the default</b>"), this));
    columnBox->addWidget(m_columns);
    auto* tables = new QHBoxLayout;
    tables->addLayout(overlapBox, 1);
    tables->addLayout(columnBox, 2);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addLayout(tables, 1);
    layout->addWidget(m_notes);
    setDiff({}, 0);
}

void RoutingDiffView::setDiff(const RoutingDiff& diff, int columns)
{
    const QStringList rows = layerRows(diff.layers);
    const int meanRow = int(diff.layers.size());

    m_overlap->clear();
    m_overlap->setRowCount(rows.size());
    m_overlap->setVerticalHeaderLabels(rows);
    m_overlap->setColumnCount(int(diff.pairs.size()));
    QStringList pairNames;
    for (std::size_t p = 0; p < diff.pairs.size(); ++p) {
        const RoutingDiff::Pair& pair = diff.pairs[p];
        pairNames << columnLetter(pair.a) + QStringLiteral("–") + columnLetter(pair.b);
        for (std::size_t l = 0; l < pair.jaccard.size(); ++l)
            m_overlap->setItem(int(l), int(p), valueItem(QString::number(pair.jaccard[l], 'f', 2), pair.jaccard[l]));
        m_overlap->setItem(meanRow, int(p), valueItem(QString::number(pair.mean, 'f', 2), pair.mean));
    }
    m_overlap->setHorizontalHeaderLabels(pairNames);

    m_columns->clear();
    m_columns->setRowCount(rows.size());
    m_columns->setVerticalHeaderLabels(rows);
    const bool drift = diff.defaultColumn >= 0;
    const int perColumn = drift ? 2 : 1;
    m_columns->setColumnCount(columns * perColumn);
    QStringList names;
    for (int c = 0; c < columns; ++c) {
        names << tr("%1 only").arg(columnLetter(c));
        if (drift) names << tr("%1 drift").arg(columnLetter(c));
        if (std::size_t(c) >= diff.onlyHere.size() || diff.onlyHere[std::size_t(c)].empty()) continue;
        const auto& only = diff.onlyHere[std::size_t(c)];
        int total = 0;
        for (std::size_t l = 0; l < only.size(); ++l) {
            QStringList ids;
            for (int e : only[l]) ids << QStringLiteral("e%1").arg(e);
            total += int(only[l].size());
            m_columns->setItem(int(l), c * perColumn, valueItem(QString::number(only[l].size()), double(only[l].size()),
                                                                ids.isEmpty() ? tr("none") : ids.join(QStringLiteral(", "))));
        }
        m_columns->setItem(meanRow, c * perColumn, valueItem(QString::number(double(total) / double(std::max<std::size_t>(1, only.size())), 'f', 1),
                                                             double(total) / double(std::max<std::size_t>(1, only.size()))));
        if (!drift) continue;
        if (c == diff.defaultColumn) {
            for (int r = 0; r < rows.size(); ++r)
                m_columns->setItem(r, c * perColumn + 1, valueItem(tr("default"), 0, tr("the default column drift is measured from")));
            continue;
        }
        const std::optional<RoutingDiff::Drift>& d = diff.drift[std::size_t(c)];
        if (!d) continue;
        const QString tip = tr("over %n position(s) whose tokens equal the default column's", nullptr, d->positions);
        for (std::size_t l = 0; l < d->changed.size(); ++l)
            m_columns->setItem(int(l), c * perColumn + 1, valueItem(percent(d->changed[l]), d->changed[l], tip));
        m_columns->setItem(meanRow, c * perColumn + 1, valueItem(percent(d->mean), d->mean, tip));
    }
    m_columns->setHorizontalHeaderLabels(names);

    QStringList notes;
    if (columns > 0 && !drift)
        notes << tr("Drift: no default column (give one column the model's own MoE settings to measure drift from).");
    else if (drift)
        notes << tr("Drift is measured from column %1 (the model's own routing).").arg(columnLetter(diff.defaultColumn));
    for (const RoutingDiff::Divergence& d : diff.divergences) {
        const QString pair = columnLetter(d.a) + QStringLiteral(" and ") + columnLetter(d.b);
        notes << (d.position ? tr("%1 (same sampling and seed, other MoE settings): tokens first diverge at generated "
                                  "position %2.")
                                   .arg(pair)
                                   .arg(*d.position)
                             : tr("%1 (same sampling and seed, other MoE settings): the same tokens over all %2 "
                                  "generated positions both have.")
                                   .arg(pair)
                                   .arg(d.compared));
    }
    m_notes->setText(notes.join('\n'));
}
