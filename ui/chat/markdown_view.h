#pragma once
// A read-only text view that grows to fit its text (the conversation scrolls, not
// each message). Renders Markdown, or HTML for the token-coloured view.
#include <QTextBrowser>

class MarkdownView : public QTextBrowser {
    Q_OBJECT

public:
    explicit MarkdownView(QWidget* parent = nullptr);

    void setMarkdownText(const QString& markdown);
    void setHtmlText(const QString& html);
    QSize sizeHint() const override;
    QSize minimumSizeHint() const override { return {100, sizeHint().height()}; }
    int heightForWidth(int width) const override;

protected:
    void resizeEvent(QResizeEvent* event) override;

private:
    void styleCode();
    void fitHeight();
};
