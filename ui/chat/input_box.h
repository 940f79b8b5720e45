#pragma once
// The message box: Enter sends, Shift+Enter starts a new line.
#include <QPlainTextEdit>

class InputBox : public QPlainTextEdit {
    Q_OBJECT

public:
    explicit InputBox(QWidget* parent = nullptr);

signals:
    void submitted();

protected:
    void keyPressEvent(QKeyEvent* event) override;
};
