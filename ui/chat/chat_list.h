#pragma once
// The chat list on the left: a search box (full-text search over every message),
// New chat, and the chats, pinned first then newest. Right-click renames, pins or
// deletes. While a search is typed the list shows the matching messages instead.
#include <QWidget>

#include <vector>

#include "moelens_storage/records.h"

class QLineEdit;
class QListWidget;
class QListWidgetItem;
class QPushButton;

class ChatList : public QWidget {
    Q_OBJECT

public:
    explicit ChatList(QWidget* parent = nullptr);

    void setChats(const std::vector<moelens::storage::Chat>& chats);
    void setSearchHits(const QString& query, const std::vector<moelens::storage::SearchHit>& hits);
    void setCurrentChat(moelens::storage::ChatId id);
    void focusSearch();
    QString searchText() const;
    QListWidget* list() const { return m_list; }

signals:
    void chatActivated(moelens::storage::ChatId id);
    void searchHitActivated(moelens::storage::ChatId chat, moelens::storage::MessageId message);
    void newChatRequested();
    void renameRequested(moelens::storage::ChatId id, const QString& title);
    void deleteRequested(moelens::storage::ChatId id, const QString& title);
    void pinRequested(moelens::storage::ChatId id, bool pinned);
    void exportRequested(moelens::storage::ChatId id, const QString& title);
    void searchChanged(const QString& text);

private:
    void showChats();
    void onItemClicked(QListWidgetItem* item);
    void showContextMenu(const QPoint& pos);

    QLineEdit* m_search = nullptr;
    QPushButton* m_new = nullptr;
    QListWidget* m_list = nullptr;
    std::vector<moelens::storage::Chat> m_chats;
    moelens::storage::ChatId m_current = 0;
    bool m_showingHits = false;
};
