#pragma once
// Routing map: for the selected answer, tokens along x (the answered message's
// prompt tokens on a tinted band, then the answer's) and experts along y for one
// MoE layer (cell shade = gate weight), or an all-layers overview (layers along y)
// coloured by each token's top-1 expert or by how many of its experts changed since
// the previous token. Hover shows, per MoE layer, the chosen experts and weights;
// a click selects the token for the Devices panel.
#include <QWidget>

#include "trace/answer_trace.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QScrollArea;

class RoutingCanvas : public QWidget {
    Q_OBJECT

public:
    enum class Mode { Layer, OverviewTopExpert, OverviewChanges };

    explicit RoutingCanvas(QWidget* parent = nullptr);
    void setTrace(const AnswerTrace* trace);
    void setMode(Mode mode, int layer);
    void setShowMessage(bool show);
    // Answer token t, or the message's token t when inMessage.
    void setSelectedToken(int t, bool inMessage = false);
    void tracesChanged();  // new tokens arrived
    void repaintVisible();  // only the part the scroll area shows
    // Row height: rows fill the visible height, between 8 and 24 pixels.
    void fitRows(int availableHeight);
    QSize sizeHint() const override;
    // Where column c is drawn (the message's tokens when shown, then the answer's).
    QRect columnRect(int c) const;
    QString tokenDetails(int t) const;        // answer token t
    QString messageTokenDetails(int i) const; // the message's token i
    // Columns: the message's tokens (when shown), then the answer's.
    int messageColumns() const;
    int columns() const;

signals:
    void tokenClicked(int t, bool inMessage);

protected:
    void paintEvent(QPaintEvent* event) override;
    void mouseMoveEvent(QMouseEvent* event) override;
    void mousePressEvent(QMouseEvent* event) override;

private:
    int rows() const;
    QString rowLabel(int row) const;
    int columnAt(const QPoint& pos) const;
    const TokenRow& rowAtColumn(int c) const;
    QString details(const TokenRow& row, const QString& title) const;

    const AnswerTrace* m_trace = nullptr;
    Mode m_mode = Mode::Layer;
    int m_layer = -1;
    int m_selected = -1;
    bool m_selectedInMessage = false;
    int m_rowHeight = 12;
    bool m_showMessage = true;
};

class RoutingMapWidget : public QWidget {
    Q_OBJECT

public:
    explicit RoutingMapWidget(QWidget* parent = nullptr);

    // `trace` stays owned by the caller and must outlive the widget's use of it.
    void setTrace(const AnswerTrace* trace, const QString& source);
    void tokensAppended();
    const AnswerTrace* trace() const { return m_trace; }
    int currentLayer() const;
    RoutingCanvas* canvas() const { return m_canvas; }
    void selectToken(int t, bool inMessage = false);

signals:
    void tokenSelected(int t, bool inMessage);
    void layerChanged(int layer);

private:
    void rebuildLayers();
    void applyMode();
    void showSource();
    bool eventFilter(QObject* watched, QEvent* event) override;
    void fitRows();

    const AnswerTrace* m_trace = nullptr;
    QComboBox* m_mode = nullptr;
    QComboBox* m_layer = nullptr;
    QCheckBox* m_showMessage = nullptr;
    QLabel* m_source = nullptr;
    QString m_sourceText;
    bool m_sourceShowsEmpty = true;  // the label has no legend yet
    QScrollArea* m_scroll = nullptr;
    RoutingCanvas* m_canvas = nullptr;
};
