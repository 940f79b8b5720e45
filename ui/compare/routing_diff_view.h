#pragma once
// "How the routing differs": the Jaccard table (MoE layers x column pairs), the
// per-column table (experts only that column used, drift from the default column)
// and the lines saying where tokens of equally sampled columns diverge. Each cell
// keeps its exact value under Qt::UserRole (tests read it).
#include <QWidget>

#include "compare/routing_diff.h"

class QLabel;
class QTableWidget;

class RoutingDiffView : public QWidget {
    Q_OBJECT

public:
    explicit RoutingDiffView(QWidget* parent = nullptr);
    void setDiff(const RoutingDiff& diff, int columns);
    QTableWidget* overlapTable() const { return m_overlap; }
    QTableWidget* columnTable() const { return m_columns; }
    QLabel* notes() const { return m_notes; }

private:
    QTableWidget* m_overlap = nullptr;
    QTableWidget* m_columns = nullptr;
    QLabel* m_notes = nullptr;
};
