#include "chat/message_widget.h"

#include <QApplication>
#include <QClipboard>
#include <QHBoxLayout>
#include <QLabel>
#include <QMouseEvent>
#include <QRegularExpression>
#include <QToolButton>
#include <QVBoxLayout>

#include "chat/markdown_view.h"

using moelens::storage::MessageState;
using moelens::storage::Role;

namespace {

QToolButton* smallButton(const QString& text, const QString& tip, QWidget* parent)
{
    auto* b = new QToolButton(parent);
    b->setText(text);
    b->setToolTip(tip);
    b->setAutoRaise(true);
    return b;
}

QString stateNote(MessageState state)
{
    switch (state) {
    case MessageState::Streaming: return QObject::tr("writing...");
    case MessageState::Stopped: return QObject::tr("stopped");
    case MessageState::Failed: return QObject::tr("failed");
    case MessageState::Interrupted: return QObject::tr("interrupted (the app was closed while it was written)");
    case MessageState::Complete: break;
    }
    return {};
}

}  // namespace

MessageWidget::MessageWidget(const moelens::storage::Message& message, QWidget* parent)
    : QFrame(parent), m_message(message)
{
    setObjectName(QStringLiteral("message%1").arg(message.id));
    setFrameShape(QFrame::StyledPanel);
    setAutoFillBackground(true);
    setBackgroundRole(message.role == Role::User ? QPalette::AlternateBase : QPalette::Base);

    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(10, 6, 10, 6);
    layout->setSpacing(2);

    auto* header = new QHBoxLayout;
    auto* who = new QLabel(message.role == Role::User        ? tr("<b>You</b>")
                           : message.role == Role::Assistant ? tr("<b>Assistant</b>")
                                                             : tr("<b>System</b>"),
                           this);
    header->addWidget(who);
    const QString note = stateNote(message.state);
    if (!note.isEmpty()) {
        auto* state = new QLabel(QStringLiteral("<i>%1</i>").arg(note.toHtmlEscaped()), this);
        state->setForegroundRole(QPalette::PlaceholderText);
        header->addWidget(state);
    }
    header->addStretch();

    if (message.sibling_count > 1) {
        QToolButton* prev = smallButton(QStringLiteral("<"), tr("Previous branch"), this);
        QToolButton* next = smallButton(QStringLiteral(">"), tr("Next branch"), this);
        prev->setObjectName(QStringLiteral("branchPrev"));
        next->setObjectName(QStringLiteral("branchNext"));
        prev->setEnabled(message.sibling_index > 1);
        next->setEnabled(message.sibling_index < message.sibling_count);
        auto* pos = new QLabel(QStringLiteral("%1/%2").arg(message.sibling_index).arg(message.sibling_count), this);
        pos->setObjectName(QStringLiteral("branchLabel"));
        connect(prev, &QToolButton::clicked, this, [this] { emit branchRequested(m_message.id, -1); });
        connect(next, &QToolButton::clicked, this, [this] { emit branchRequested(m_message.id, +1); });
        header->addWidget(prev);
        header->addWidget(pos);
        header->addWidget(next);
        m_prev = prev;
        m_next = next;
    }

    QToolButton* copy = smallButton(tr("Copy"), tr("Copy the message's text"), this);
    connect(copy, &QToolButton::clicked, this, [this] { QApplication::clipboard()->setText(m_text); });
    header->addWidget(copy);
    m_copyCode = smallButton(tr("Copy code"), tr("Copy the code blocks of this message"), this);
    connect(m_copyCode, &QToolButton::clicked, this, [this] { QApplication::clipboard()->setText(codeBlocks()); });
    header->addWidget(m_copyCode);
    if (message.role == Role::User) {
        QToolButton* edit = smallButton(tr("Edit"), tr("Edit this message; the answer is written again as a new branch"), this);
        edit->setObjectName(QStringLiteral("editButton"));
        connect(edit, &QToolButton::clicked, this, [this] { emit editRequested(m_message.id); });
        header->addWidget(edit);
        m_generateActions << edit;
    } else if (message.role == Role::Assistant) {
        QToolButton* regen = smallButton(tr("Regenerate"), tr("Write this answer again as a new branch (Ctrl+R)"), this);
        regen->setObjectName(QStringLiteral("regenerateButton"));
        connect(regen, &QToolButton::clicked, this, [this] { emit regenerateRequested(m_message.id); });
        header->addWidget(regen);
        m_generateActions << regen;
    }
    layout->addLayout(header);

    m_body = new MarkdownView(this);
    m_body->viewport()->installEventFilter(this);
    layout->addWidget(m_body);

    m_stats = new QLabel(this);
    m_stats->setObjectName(QStringLiteral("stats"));
    m_stats->setForegroundRole(QPalette::PlaceholderText);
    m_stats->setWordWrap(true);
    m_stats->hide();
    layout->addWidget(m_stats);

    setText(QString::fromStdString(message.content));
}

void MessageWidget::setText(const QString& text)
{
    m_text = text;
    m_body->setMarkdownText(text);
    m_copyCode->setVisible(text.contains(QStringLiteral("```")));
}

void MessageWidget::setColouredHtml(const QString& html) { m_body->setHtmlText(html); }

void MessageWidget::setStats(const QString& stats, const QString& tooltip)
{
    m_stats->setText(stats);
    m_stats->setToolTip(tooltip);
    m_stats->setVisible(!stats.isEmpty());
}

void MessageWidget::setSelected(bool selected)
{
    setFrameShadow(selected ? QFrame::Sunken : QFrame::Plain);
    setLineWidth(selected ? 2 : 1);
    setFrameShape(selected ? QFrame::Box : QFrame::StyledPanel);
}

void MessageWidget::setActionsEnabled(bool canBrowse, bool canGenerate)
{
    if (m_prev) m_prev->setEnabled(canBrowse && m_message.sibling_index > 1);
    if (m_next) m_next->setEnabled(canBrowse && m_message.sibling_index < m_message.sibling_count);
    for (QToolButton* b : m_generateActions) b->setEnabled(canGenerate);
}

void MessageWidget::mousePressEvent(QMouseEvent* event)
{
    emit clicked(m_message.id);
    QFrame::mousePressEvent(event);
}

bool MessageWidget::eventFilter(QObject* watched, QEvent* event)
{
    if (event->type() == QEvent::MouseButtonPress) emit clicked(m_message.id);
    return QFrame::eventFilter(watched, event);
}

QString MessageWidget::codeBlocks() const
{
    static const QRegularExpression fence(QStringLiteral("```[^\\n]*\\n(.*?)```"),
                                          QRegularExpression::DotMatchesEverythingOption);
    QStringList blocks;
    for (auto it = fence.globalMatch(m_text); it.hasNext();) blocks << it.next().captured(1);
    return blocks.join(QLatin1Char('\n'));
}
