#pragma once
// The conversation in the centre: the messages of the branch on screen, top to
// bottom, the answer being written at the end, or a welcome page when no chat is
// open. Scrolls along with a streaming answer unless the user scrolled up.
#include <QScrollArea>

#include <map>
#include <optional>
#include <vector>

#include "moelens_storage/records.h"

class MessageWidget;
class QLabel;
class QVBoxLayout;

struct ShownMessage {
    moelens::storage::Message message;
    std::optional<moelens::storage::Run> run;  // the latest run of an answer
};

class ConversationView : public QScrollArea {
    Q_OBJECT

public:
    explicit ConversationView(QWidget* parent = nullptr);

    void showWelcome(const QString& html);
    void setMessages(const std::vector<ShownMessage>& messages);
    // The answer being written: shown after the messages until the chat is reloaded.
    MessageWidget* beginStreaming(const moelens::storage::Message& placeholder);
    void appendStreaming(const QString& text);
    MessageWidget* streamingWidget() const { return m_streaming; }
    MessageWidget* widgetFor(moelens::storage::MessageId id) const;
    QList<MessageWidget*> messageWidgets() const;
    void setSelected(moelens::storage::MessageId id);
    void setActionsEnabled(bool canBrowse, bool canGenerate);
    const std::vector<ShownMessage>& messages() const { return m_messages; }

signals:
    void messageClicked(moelens::storage::MessageId id);
    void editRequested(moelens::storage::MessageId id);
    void regenerateRequested(moelens::storage::MessageId id);
    void branchRequested(moelens::storage::MessageId id, int step);

private:
    void clear();
    MessageWidget* addWidget(const moelens::storage::Message& message);
    bool atEnd() const;

    QWidget* m_content = nullptr;
    QVBoxLayout* m_layout = nullptr;
    QLabel* m_welcome = nullptr;
    std::vector<ShownMessage> m_messages;
    MessageWidget* m_streaming = nullptr;
    QString m_streamText;
    bool m_stickToEnd = true;  // follow new text until the user scrolls up
    bool m_canBrowse = true;
    bool m_canGenerate = true;
};

QString runStatsText(const moelens::storage::Run& run);
