#include "viz/viz_common.h"

#include <QChart>
#include <QFileDialog>
#include <QMessageBox>
#include <QPixmap>
#include <QStandardPaths>
#include <QValueAxis>
#include <QWidget>

#include <algorithm>

#include "moelens/events.h"
#include "trace/answer_trace.h"

QColor expertColour(int expert)
{
    const int hue = int(std::fmod(expert * 137.508, 360.0));
    return QColor::fromHsv(hue, 160 + (expert % 3) * 30, 200 - (expert % 2) * 40);
}

bool paletteIsDark(const QWidget* widget) { return widget->palette().color(QPalette::Window).lightness() < 128; }

void styleChart(QChart* chart, const QWidget* widget)
{
    chart->setTheme(paletteIsDark(widget) ? QChart::ChartThemeDark : QChart::ChartThemeLight);
    chart->setBackgroundBrush(widget->palette().color(QPalette::Base));
    chart->setTitleBrush(widget->palette().color(QPalette::Text));
    chart->legend()->setLabelColor(widget->palette().color(QPalette::Text));
    chart->setMargins(QMargins(4, 4, 4, 4));
    chart->setBackgroundRoundness(0);
}

void resetChart(QChart* chart, const QWidget* widget)
{
    chart->removeAllSeries();
    for (QAbstractAxis* axis : chart->axes()) {
        chart->removeAxis(axis);
        delete axis;
    }
    styleChart(chart, widget);
}

void savePanelPng(QWidget* widget, const QString& suggestedName)
{
    const QString dir = QStandardPaths::writableLocation(QStandardPaths::PicturesLocation);
    const QString file = QFileDialog::getSaveFileName(widget, QObject::tr("Save as PNG"), dir + "/" + suggestedName,
                                                      QObject::tr("PNG images (*.png)"));
    if (file.isEmpty()) return;
    if (!widget->grab().save(file, "PNG"))
        QMessageBox::warning(widget, QObject::tr("Save as PNG"), QObject::tr("Could not write %1.").arg(file));
}

int expertGroup(const moelens::RoutingRecord& record, std::size_t j, const TraceShape& shape)
{
    if (j < record.groups.size()) return record.groups[j];
    if (shape.nGroup <= 1 || shape.nRoutedExperts <= 0 || j >= record.experts.size()) return 0;
    return record.experts[j] / std::max(1, shape.nRoutedExperts / shape.nGroup);
}

QString formatBytes(double bytes)
{
    if (bytes >= 1024.0 * 1024 * 1024) return QObject::tr("%1 GiB").arg(bytes / (1024.0 * 1024 * 1024), 0, 'f', 2);
    if (bytes >= 1024.0 * 1024) return QObject::tr("%1 MiB").arg(bytes / (1024.0 * 1024), 0, 'f', 2);
    if (bytes >= 1024.0) return QObject::tr("%1 KiB").arg(bytes / 1024.0, 0, 'f', 1);
    return QObject::tr("%1 B").arg(qint64(bytes));
}

int integerTickStep(int maxValue, int maxTicks)
{
    const int intervals = std::max(1, maxTicks - 1);
    for (int scale = 1;; scale *= 10)
        for (int m : {1, 2, 5})
            if (maxValue <= m * scale * intervals) return m * scale;
}

void setIntegerAxis(QValueAxis* axis, int maxValue, int maxTicks)
{
    maxValue = std::max(1, maxValue);
    axis->setLabelFormat(QStringLiteral("%d"));
    axis->setRange(0, maxValue);
    axis->setTickType(QValueAxis::TicksDynamic);
    axis->setTickAnchor(0);
    axis->setTickInterval(integerTickStep(maxValue, maxTicks));
}
