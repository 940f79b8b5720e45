#include "chat/conversation_view.h"

#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QScrollBar>
#include <QTimer>
#include <QVBoxLayout>

#include "chat/message_widget.h"

using moelens::storage::Role;

QString runStatsText(const moelens::storage::Run& run)
{
    const moelens::storage::RunRecord& r = run.record;
    const QJsonObject sampling = QJsonDocument::fromJson(QByteArray::fromStdString(r.sampling_json)).object();
    QString settings;
    if (!sampling.isEmpty()) {
        const double t = sampling.value(QStringLiteral("temperature")).toDouble();
        settings = t <= 0 ? QObject::tr("greedy")
                          : QObject::tr("temp %1, top-k %2, top-p %3")
                                .arg(t, 0, 'g', 3)
                                .arg(sampling.value(QStringLiteral("top_k")).toInt())
                                .arg(sampling.value(QStringLiteral("top_p")).toDouble(), 0, 'g', 3);
    }
    QString model = QFileInfo(QString::fromStdString(r.model_path)).fileName();
    QString text = QObject::tr("%1 tokens · %2 tok/s · prompt %3 tokens · %4")
                       .arg(r.tokens_out)
                       .arg(r.decode_tokens_per_s, 0, 'f', 1)
                       .arg(r.tokens_in)
                       .arg(model);
    if (!settings.isEmpty()) text += QStringLiteral(" · ") + settings;
    if (!r.stop_reason.empty()) text += QObject::tr(" · ended: %1").arg(QString::fromStdString(r.stop_reason));
    if (!r.error.empty()) text += QObject::tr(" · error: %1").arg(QString::fromStdString(r.error));
    return text;
}

ConversationView::ConversationView(QWidget* parent) : QScrollArea(parent)
{
    setObjectName(QStringLiteral("conversation"));
    setWidgetResizable(true);
    setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    m_content = new QWidget;
    m_layout = new QVBoxLayout(m_content);
    m_layout->setContentsMargins(12, 12, 12, 12);
    m_layout->setSpacing(8);
    m_welcome = new QLabel(m_content);
    m_welcome->setObjectName(QStringLiteral("welcome"));
    m_welcome->setWordWrap(true);
    m_welcome->setTextFormat(Qt::RichText);
    m_welcome->setOpenExternalLinks(true);
    m_welcome->setMargin(16);
    m_layout->addWidget(m_welcome);
    m_layout->addStretch();
    setWidget(m_content);
    // Message heights settle only after layout, so "scroll to the end" is applied
    // whenever the range grows, for as long as the user has not scrolled up.
    connect(verticalScrollBar(), &QScrollBar::rangeChanged, this, [this](int, int max) {
        if (m_stickToEnd) verticalScrollBar()->setValue(max);
    });
    connect(verticalScrollBar(), &QScrollBar::actionTriggered, this, [this] {
        QTimer::singleShot(0, this, [this] { m_stickToEnd = atEnd(); });
    });
}

void ConversationView::showWelcome(const QString& html)
{
    clear();
    m_messages.clear();
    m_welcome->setText(html);
    m_welcome->show();
}

void ConversationView::clear()
{
    for (MessageWidget* w : messageWidgets()) {
        // Out of the tree at once (findChildren must not see it), deleted later:
        // this may run inside one of its own signals.
        m_layout->removeWidget(w);
        w->hide();
        w->setParent(nullptr);
        w->deleteLater();
    }
    m_streaming = nullptr;
    m_streamText.clear();
}

MessageWidget* ConversationView::addWidget(const moelens::storage::Message& message)
{
    auto* w = new MessageWidget(message, m_content);
    m_layout->insertWidget(m_layout->count() - 1, w);
    w->setActionsEnabled(m_canBrowse, m_canGenerate);
    connect(w, &MessageWidget::clicked, this, &ConversationView::messageClicked);
    connect(w, &MessageWidget::editRequested, this, &ConversationView::editRequested);
    connect(w, &MessageWidget::regenerateRequested, this, &ConversationView::regenerateRequested);
    connect(w, &MessageWidget::branchRequested, this, &ConversationView::branchRequested);
    return w;
}

void ConversationView::setMessages(const std::vector<ShownMessage>& messages)
{
    clear();
    m_welcome->hide();
    m_messages = messages;
    for (const ShownMessage& m : messages) {
        if (m.message.role == Role::System) continue;
        MessageWidget* w = addWidget(m.message);
        if (m.run) w->setStats(runStatsText(*m.run), QString::fromStdString(m.run->record.sampling_json));
    }
    m_stickToEnd = true;
    verticalScrollBar()->setValue(verticalScrollBar()->maximum());
}

MessageWidget* ConversationView::beginStreaming(const moelens::storage::Message& placeholder)
{
    m_welcome->hide();
    m_streamText.clear();
    m_streaming = addWidget(placeholder);
    m_streaming->setStats(tr("reading the prompt..."));
    m_stickToEnd = true;
    return m_streaming;
}

void ConversationView::appendStreaming(const QString& text)
{
    if (!m_streaming || text.isEmpty()) return;
    m_streamText += text;
    m_streaming->setText(m_streamText);
}

bool ConversationView::atEnd() const
{
    const QScrollBar* bar = verticalScrollBar();
    return bar->value() >= bar->maximum() - 24;
}

MessageWidget* ConversationView::widgetFor(moelens::storage::MessageId id) const
{
    for (MessageWidget* w : messageWidgets())
        if (w->messageId() == id) return w;
    return nullptr;
}

QList<MessageWidget*> ConversationView::messageWidgets() const
{
    return m_content->findChildren<MessageWidget*>(QString(), Qt::FindDirectChildrenOnly);
}

void ConversationView::setSelected(moelens::storage::MessageId id)
{
    for (MessageWidget* w : messageWidgets()) w->setSelected(w->messageId() == id);
}

void ConversationView::setActionsEnabled(bool canBrowse, bool canGenerate)
{
    m_canBrowse = canBrowse;
    m_canGenerate = canGenerate;
    for (MessageWidget* w : messageWidgets()) w->setActionsEnabled(canBrowse, canGenerate);
}
