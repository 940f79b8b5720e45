#pragma once
// The main window: the chat list on the left, the conversation and the input box
// in the centre, the "seeing inside" docks around them, menus and status bar.
// It drives the EngineWorker and the StorageWorker (built outside and passed in)
// only through queued calls, and owns every item and view on the UI thread.
// Geometry and dock layout are restored from the profile's layout file.
#include <QMainWindow>

#include <memory>
#include <optional>
#include <vector>

#include "app_paths.h"
#include "chat/conversation_view.h"
#include "dialogs/generation_settings.h"
#include "trace/answer_trace.h"
#include "workers/engine_types.h"

class ChatList;
class CompareView;
class QTabWidget;
class DevicesWidget;
class EngineWorker;
class ExpertLoadWidget;
class InputBox;
class LatentCacheWidget;
class QAction;
class QDockWidget;
class QLabel;
class QMenu;
class QProgressBar;
class QPushButton;
class QTimer;
class QToolButton;
class RoutingMapWidget;
class StorageWorker;

class MainWindow : public QMainWindow {
    Q_OBJECT

public:
    struct Options {
        // On start: `modelDir` if given, else the last model, else the built-in trained
        // demo model, else the random-weight demo (written into the profile).
        bool loadModelOnStart = true;
        QString modelDir;
        bool randomDemoOnStart = false;  // tests: the random-weight demo (never stops early at EOS)
    };

    MainWindow(const AppPaths& paths, EngineWorker* engine, StorageWorker* storage, Options options,
               QWidget* parent = nullptr);
    ~MainWindow() override;

    QList<QDockWidget*> insideDocks() const { return m_docks; }
    // For tests and scripted use.
    bool isModelLoaded() const { return m_model.has_value(); }
    QString modelDir() const { return m_modelDir; }
    bool isGenerating() const { return m_generating; }
    moelens::storage::ChatId currentChat() const { return m_chat; }
    moelens::storage::MessageId selectedAnswer() const { return m_selectedAnswer; }
    const AnswerTrace& shownTrace() const { return *m_shownTrace; }
    ConversationView* conversation() const { return m_conversation; }
    InputBox* input() const { return m_input; }
    ChatList* chatList() const { return m_chatList; }
    RoutingMapWidget* routingMap() const { return m_routing; }
    ExpertLoadWidget* expertLoad() const { return m_load; }
    LatentCacheWidget* latentCache() const { return m_cache; }
    DevicesWidget* devices() const { return m_devices; }
    const GenerationSettings& generationSettings() const { return m_settings; }
    QTabWidget* centreTabs() const { return m_tabs; }
    QMenu* savedComparisonsMenu() const { return m_savedComparisons; }
    QList<CompareView*> compareViews() const;
    bool isComparing() const { return m_comparing; }
    // Replaces and stores the settings (what the Settings dialog does on OK).
    void setGenerationSettings(const GenerationSettings& settings);

public slots:
    void sendMessage();
    void stopGeneration();
    void newChat();
    void regenerateLast();
    void openChat(moelens::storage::ChatId id);
    // Types `text` into the input box and sends it (scripted use: --send).
    void sendText(const QString& text);
    // Model > Check Absorbed vs Naive MLA on the selected answer.
    void checkAttentionPaths();
    // File > Export: Markdown when `path` ends in .md, else JSON; all chats when
    // `chats` is empty. File > Import: the JSON's chats are added as new chats.
    // Both run on the storage thread; failures show an error naming the file.
    void exportChats(const QString& path, const std::vector<moelens::storage::ChatId>& chats);
    void importChats(const QString& path);
    // Chat > Compare...: a compare tab over the current chat's last message, or over a
    // new prompt when no chat with a message is open. Chat > Saved Comparisons reopens one.
    void openCompare();
    void openStoredComparison(moelens::storage::ComparisonId id);

signals:
    // Emitted after a chat's messages are on screen (tests wait for it).
    void chatShown(moelens::storage::ChatId id);
    void answerTraceShown(moelens::storage::MessageId id);
    void chatsExported(const QString& path, int chats);
    void chatsImported(const QString& path, int chats);
    void modelReady();
    void compareOpened(CompareView* view);

protected:
    void closeEvent(QCloseEvent* event) override;

private:
    // main_window.cpp: building the window
    void createCentre();
    void createDocks();
    void createMenus();
    void createStatusBar();
    void connectWorkers();
    QDockWidget* addInsideDock(const QString& objectName, const QString& title, QWidget* content,
                               Qt::DockWidgetArea area);
    void restoreLayout();
    void saveLayout() const;
    void showShortcuts();
    void showAbout();
    void showSettings();
    void updateInputState();
    void showError(const QString& title, const QString& message);
    QString welcomeHtml() const;

    // main_window_chat.cpp: chats, messages, generation
    void refreshChatList();
    void showPath(moelens::storage::ChatId chat, const moelens::storage::Chat& info, const std::vector<ShownMessage>& path);
    void startGeneration(moelens::storage::ChatId chat, const std::vector<ShownMessage>& path,
                         moelens::storage::MessageId reply);
    void drainTokens();
    void onGenerationFinished(const GenerationSummary& summary);
    void regenerate(moelens::storage::MessageId answer);
    void beginEdit(moelens::storage::MessageId message);
    void cancelEdit();
    void stepBranch(moelens::storage::MessageId message, int step);
    void deleteChat(moelens::storage::ChatId id, const QString& title);
    void runSearch(const QString& query);
    ChatTurns turnsBefore(const std::vector<ShownMessage>& path, std::size_t end) const;

    // main_window_exchange.cpp: export and import
    void exportChatsDialog(moelens::storage::ChatId chat, const QString& title);  // chat 0: all chats
    void importChatsDialog();

    // main_window_compare.cpp: compare tabs
    CompareView* addCompareTab(const struct CompareSource& source, const std::vector<moelens::storage::Preset>& presets);
    void closeCompareTab(int index);
    // Every compare tab (a new model was loaded: their settings were checked against the old one).
    void closeCompareTabs();
    void refreshComparisons();
    // A compare tab wants the width and height the chat gives the chat list and the
    // bottom panels: each kind of tab keeps its own dock layout, swapped on switching.
    void onTabChanged(int index);

    // main_window_model.cpp: models, traces, the attention check
    void startupModel(const QString& lastModel);
    void loadDemoModel();
    void loadBuiltinModel();
    void openModelFolder();
    void loadModel(const QString& dir);
    void onModelLoaded(const moelens::ModelInfo& info);
    void onInspected(const moelens::ModelInfo& info);
    void onAttentionChecked(const AttentionCheckResult& result);
    void rebuildRecentMenu();
    void selectAnswer(moelens::storage::MessageId id);
    void showTrace(const AnswerTrace* trace, const QString& source);
    void refreshInsideViews();
    void loadChatTraces();
    void applyTokenColouring();
    void saveSettings();
    void sendEngineSettings();

    AppPaths m_paths;
    QString m_exchangeDir;  // where the last export/import file was
    EngineWorker* m_engine;
    StorageWorker* m_storage;
    Options m_options;

    ChatList* m_chatList = nullptr;
    ConversationView* m_conversation = nullptr;
    InputBox* m_input = nullptr;
    QPushButton* m_send = nullptr;
    QPushButton* m_stop = nullptr;
    QLabel* m_inputHint = nullptr;
    RoutingMapWidget* m_routing = nullptr;
    ExpertLoadWidget* m_load = nullptr;
    LatentCacheWidget* m_cache = nullptr;
    DevicesWidget* m_devices = nullptr;
    QList<QDockWidget*> m_docks;
    QLabel* m_modelLabel = nullptr;
    QLabel* m_deviceLabel = nullptr;
    QProgressBar* m_progress = nullptr;
    QToolButton* m_cancelLoad = nullptr;
    QMenu* m_recentMenu = nullptr;
    QAction* m_colourTokens = nullptr;
    QAction* m_checkAttention = nullptr;
    QTimer* m_drainTimer = nullptr;
    QTabWidget* m_tabs = nullptr;
    QMenu* m_savedComparisons = nullptr;
    QAction* m_compareAction = nullptr;
    QByteArray m_chatLayout;     // dock layout of the chat tab, while a compare tab is shown
    QByteArray m_compareLayout;  // dock layout of compare tabs, while the chat tab is shown
    bool m_compareLayoutShown = false;
    // Bumped whenever the set of docks changes, so an old saved layout is ignored
    // instead of restoring docks into the wrong places.
    static constexpr int kLayoutVersion = 4;

    GenerationSettings m_settings;
    QStringList m_recentModels;
    std::optional<moelens::ModelInfo> m_model;
    QString m_modelDir;
    bool m_loading = false;
    bool m_generating = false;
    bool m_sending = false;  // the store is writing the user's message; the answer starts next
    bool m_comparing = false;  // a comparison holds the engine (until its compareFinished)
    int m_drains = 0;
    moelens::storage::MessageId m_colouredMessage = 0;
    bool m_closing = false;
    bool m_openLatestChat = true;  // on start, the most recent chat opens

    moelens::storage::ChatId m_chat = 0;
    moelens::storage::Chat m_chatInfo;
    moelens::storage::MessageId m_editing = 0;
    moelens::storage::MessageId m_selectedAnswer = 0;

    // The answer being written (and, once stored, still the one on screen).
    quint64 m_generationId = 0;
    moelens::storage::MessageId m_liveReply = 0;
    GenerateRequest m_liveRequest;
    qint64 m_liveStartedMs = 0;
    QString m_liveText;
    QString m_unsavedDelta;
    qint64 m_lastSaveMs = 0;
    AnswerTrace m_liveTrace;
    AnswerTrace m_replayTrace;
    const AnswerTrace* m_shownTrace = &m_liveTrace;
    QString m_shownSource;  // what the panels say the shown trace is
};
