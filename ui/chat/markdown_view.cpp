#include "chat/markdown_view.h"

#include <QFontDatabase>
#include <cmath>
#include <QResizeEvent>
#include <QTextBlock>
#include <QTextCursor>
#include <QTextDocument>
#include <QTextFrame>

MarkdownView::MarkdownView(QWidget* parent) : QTextBrowser(parent)
{
    setFrameShape(QFrame::NoFrame);
    setVerticalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    setOpenExternalLinks(true);
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Minimum);
    viewport()->setAutoFillBackground(false);
    setAutoFillBackground(false);
    document()->setDocumentMargin(2);
}

void MarkdownView::setMarkdownText(const QString& markdown)
{
    setMarkdown(markdown);
    styleCode();
    fitHeight();
}

void MarkdownView::setHtmlText(const QString& html)
{
    setHtml(html);
    fitHeight();
}

// QTextDocument's Markdown reader marks code blocks with a code language property
// but keeps the body font; a monospace font and a shaded background tell code apart.
void MarkdownView::styleCode()
{
    const QFont mono = QFontDatabase::systemFont(QFontDatabase::FixedFont);
    QTextCursor cursor(document());
    for (QTextBlock block = document()->begin(); block.isValid(); block = block.next()) {
        if (!block.blockFormat().hasProperty(QTextFormat::BlockCodeFence) &&
            !block.blockFormat().hasProperty(QTextFormat::BlockCodeLanguage))
            continue;
        cursor.setPosition(block.position());
        cursor.setPosition(block.position() + block.length() - 1, QTextCursor::KeepAnchor);
        QTextCharFormat chars;
        chars.setFont(mono);
        cursor.mergeCharFormat(chars);
        QTextBlockFormat shade;
        shade.setBackground(palette().color(QPalette::AlternateBase));
        cursor.mergeBlockFormat(shade);
    }
}

int MarkdownView::heightForWidth(int width) const
{
    QTextDocument* doc = document();
    const qreal old = doc->textWidth();
    doc->setTextWidth(width);
    const int h = int(std::ceil(doc->size().height())) + 2 * frameWidth();
    doc->setTextWidth(old);
    return h;
}

QSize MarkdownView::sizeHint() const { return {400, heightForWidth(width() > 0 ? width() : 400)}; }

void MarkdownView::resizeEvent(QResizeEvent* event)
{
    QTextBrowser::resizeEvent(event);
    fitHeight();
}

void MarkdownView::fitHeight()
{
    document()->setTextWidth(viewport()->width() > 0 ? viewport()->width() : 400);
    const int h = int(std::ceil(document()->size().height())) + 2 * frameWidth();
    if (h != height()) {
        setFixedHeight(h);
        updateGeometry();
    }
}
