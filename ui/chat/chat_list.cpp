#include "chat/chat_list.h"

#include <QDateTime>
#include <QInputDialog>
#include <QLineEdit>
#include <QListWidget>
#include <QMenu>
#include <QPushButton>
#include <QTimer>
#include <QVBoxLayout>

using moelens::storage::Chat;
using moelens::storage::ChatId;

namespace {

enum ItemRole { ChatIdRole = Qt::UserRole, MessageIdRole, PinnedRole, TitleRole };

// The store marks matches with U+0002/U+0003 so the text can be escaped first.
QString snippetHtml(const std::string& snippet)
{
    QString html = QString::fromStdString(snippet).toHtmlEscaped();
    html.replace(QChar(0x02), QStringLiteral("<b>"));
    html.replace(QChar(0x03), QStringLiteral("</b>"));
    return html;
}

}  // namespace

ChatList::ChatList(QWidget* parent) : QWidget(parent)
{
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(6, 6, 6, 6);
    m_new = new QPushButton(tr("New chat"), this);
    m_new->setObjectName(QStringLiteral("newChatButton"));
    m_new->setToolTip(tr("Start a new chat (Ctrl+N)"));
    m_search = new QLineEdit(this);
    m_search->setObjectName(QStringLiteral("chatSearch"));
    m_search->setPlaceholderText(tr("Search all chats (Ctrl+F)"));
    m_search->setClearButtonEnabled(true);
    m_list = new QListWidget(this);
    m_list->setObjectName(QStringLiteral("chatList"));
    m_list->setContextMenuPolicy(Qt::CustomContextMenu);
    m_list->setWordWrap(true);
    m_list->setTextElideMode(Qt::ElideRight);
    layout->addWidget(m_new);
    layout->addWidget(m_search);
    layout->addWidget(m_list, 1);

    // Search as you type, but not a query per keystroke.
    auto* debounce = new QTimer(this);
    debounce->setSingleShot(true);
    debounce->setInterval(150);
    connect(m_search, &QLineEdit::textChanged, debounce, qOverload<>(&QTimer::start));
    connect(debounce, &QTimer::timeout, this, [this] {
        const QString q = m_search->text().trimmed();
        if (q.isEmpty()) showChats();
        emit searchChanged(q);
    });
    connect(m_new, &QPushButton::clicked, this, &ChatList::newChatRequested);
    connect(m_list, &QListWidget::itemClicked, this, &ChatList::onItemClicked);
    connect(m_list, &QListWidget::itemActivated, this, &ChatList::onItemClicked);
    connect(m_list, &QListWidget::customContextMenuRequested, this, &ChatList::showContextMenu);
}

void ChatList::setChats(const std::vector<Chat>& chats)
{
    m_chats = chats;
    if (m_search->text().trimmed().isEmpty()) showChats();
}

void ChatList::showChats()
{
    m_showingHits = false;
    m_list->clear();
    for (const Chat& c : m_chats) {
        const QString title = QString::fromStdString(c.title);
        const QString when = QDateTime::fromMSecsSinceEpoch(c.updated_ms).toString(QStringLiteral("yyyy-MM-dd hh:mm"));
        auto* item = new QListWidgetItem((c.pinned ? QStringLiteral("\u2605 ") : QString()) + title + "\n" + when);
        item->setData(ChatIdRole, qint64(c.id));
        item->setData(PinnedRole, c.pinned);
        item->setData(TitleRole, title);
        item->setToolTip(title);
        m_list->addItem(item);
        if (c.id == m_current) m_list->setCurrentItem(item);
    }
}

void ChatList::setSearchHits(const QString& query, const std::vector<moelens::storage::SearchHit>& hits)
{
    if (query != m_search->text().trimmed()) return;  // an older query's answer
    m_showingHits = true;
    m_list->clear();
    if (hits.empty()) {
        auto* item = new QListWidgetItem(tr("No message contains \"%1\".").arg(query));
        item->setFlags(Qt::NoItemFlags);
        m_list->addItem(item);
        return;
    }
    for (const moelens::storage::SearchHit& h : hits) {
        auto* item = new QListWidgetItem(QString::fromStdString(h.chat_title));
        item->setData(ChatIdRole, qint64(h.chat_id));
        item->setData(MessageIdRole, qint64(h.message_id));
        item->setToolTip(snippetHtml(h.snippet));
        QString plain = QString::fromStdString(h.snippet);
        plain.remove(QChar(0x02)).remove(QChar(0x03));
        item->setText(QString::fromStdString(h.chat_title) + "\n" + plain.simplified());
        m_list->addItem(item);
    }
}

void ChatList::setCurrentChat(ChatId id)
{
    m_current = id;
    if (m_showingHits) return;
    for (int i = 0; i < m_list->count(); ++i)
        if (m_list->item(i)->data(ChatIdRole).toLongLong() == id) m_list->setCurrentRow(i);
}

void ChatList::focusSearch()
{
    m_search->setFocus(Qt::ShortcutFocusReason);
    m_search->selectAll();
}

QString ChatList::searchText() const { return m_search->text().trimmed(); }

void ChatList::onItemClicked(QListWidgetItem* item)
{
    const ChatId chat = item->data(ChatIdRole).toLongLong();
    if (chat == 0) return;
    if (m_showingHits)
        emit searchHitActivated(chat, item->data(MessageIdRole).toLongLong());
    else
        emit chatActivated(chat);
}

void ChatList::showContextMenu(const QPoint& pos)
{
    QListWidgetItem* item = m_list->itemAt(pos);
    if (!item || m_showingHits) return;
    const ChatId id = item->data(ChatIdRole).toLongLong();
    const QString title = item->data(TitleRole).toString();
    const bool pinned = item->data(PinnedRole).toBool();
    QMenu menu(this);
    menu.addAction(tr("Rename..."), this, [this, id, title] {
        bool ok = false;
        const QString t = QInputDialog::getText(this, tr("Rename chat"), tr("Title:"), QLineEdit::Normal, title, &ok);
        if (ok && !t.trimmed().isEmpty()) emit renameRequested(id, t.trimmed());
    });
    menu.addAction(pinned ? tr("Unpin") : tr("Pin to the top"), this, [this, id, pinned] { emit pinRequested(id, !pinned); });
    menu.addAction(tr("Export..."), this, [this, id, title] { emit exportRequested(id, title); });
    menu.addSeparator();
    menu.addAction(tr("Delete..."), this, [this, id, title] { emit deleteRequested(id, title); });
    menu.exec(m_list->viewport()->mapToGlobal(pos));
}
