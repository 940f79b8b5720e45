#pragma once
// Helpers the "seeing inside" panels share: one colour per expert, chart themes
// that follow the window's light or dark palette, saving a panel as PNG, and the
// device (expert group) of a routed expert.
#include <QColor>
#include <QString>

class QChart;
class QValueAxis;
class QWidget;
namespace moelens {
struct RoutingRecord;
}
struct TraceShape;

// Distinct, stable hues for expert ids (golden-angle steps around the colour wheel).
QColor expertColour(int expert);
bool paletteIsDark(const QWidget* widget);
void styleChart(QChart* chart, const QWidget* widget);
// Removes every series and axis (the panels rebuild their chart from scratch on each
// refresh), then styles the empty chart for the widget's palette.
void resetChart(QChart* chart, const QWidget* widget);
// Asks for a file name and saves `widget` as it is drawn; reports failure in a message box.
void savePanelPng(QWidget* widget, const QString& suggestedName);
// Group of the j-th chosen expert: as reported by the engine, or derived from
// DeepSeek's contiguous grouping when a stored trace lacks it.
int expertGroup(const moelens::RoutingRecord& record, std::size_t j, const TraceShape& shape);
QString formatBytes(double bytes);
// An axis of whole numbers (tokens, counts) from 0 to maxValue: ticks at multiples of
// 1, 2 or 5 x 10^k, at most about `maxTicks` of them, so every label is exact (evenly
// spaced ticks over 0..9 would sit at 1.8, 3.6, ... and print as 1, 3, ...).
void setIntegerAxis(QValueAxis* axis, int maxValue, int maxTicks = 6);
// The tick step setIntegerAxis uses.
int integerTickStep(int maxValue, int maxTicks);
