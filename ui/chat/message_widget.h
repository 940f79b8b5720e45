#pragma once
// One message of the conversation: who wrote it, its text (Markdown), the branch
// control `< 2/3 >`, actions (copy, edit, regenerate) and, under an answer, the
// run's figures (tokens, tokens/s, model, sampling).
#include <QFrame>

#include "moelens_storage/records.h"

class QLabel;
class QToolButton;
class MarkdownView;

class MessageWidget : public QFrame {
    Q_OBJECT

public:
    MessageWidget(const moelens::storage::Message& message, QWidget* parent = nullptr);

    moelens::storage::MessageId messageId() const { return m_message.id; }
    moelens::storage::Role role() const { return m_message.role; }
    const QString& text() const { return m_text; }

    void setText(const QString& text);  // re-renders (streaming)
    // Colours the text token by token (spans with the colour of each token's top-1 expert).
    void setColouredHtml(const QString& html);
    void setStats(const QString& stats, const QString& tooltip = {});
    void setSelected(bool selected);
    // Branch steps need only the store; edit and regenerate also need a model.
    void setActionsEnabled(bool canBrowse, bool canGenerate);

signals:
    void clicked(moelens::storage::MessageId id);
    void editRequested(moelens::storage::MessageId id);
    void regenerateRequested(moelens::storage::MessageId id);
    void branchRequested(moelens::storage::MessageId id, int step);  // step -1 or +1

protected:
    void mousePressEvent(QMouseEvent* event) override;
    bool eventFilter(QObject* watched, QEvent* event) override;

private:
    QString codeBlocks() const;

    moelens::storage::Message m_message;
    QString m_text;
    MarkdownView* m_body = nullptr;
    QLabel* m_stats = nullptr;
    QToolButton* m_copyCode = nullptr;
    QToolButton* m_prev = nullptr;
    QToolButton* m_next = nullptr;
    QList<QToolButton*> m_generateActions;
};
