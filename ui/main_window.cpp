#include "main_window.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDockWidget>
#include <QHBoxLayout>
#include <QJsonArray>
#include <QJsonDocument>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QProgressBar>
#include <QSemaphore>
#include <QPushButton>
#include <QSettings>
#include <QSplitter>
#include <QStatusBar>
#include <QTabBar>
#include <QTabWidget>
#include <QTimer>
#include <QToolBar>
#include <QToolButton>
#include <QVBoxLayout>

#include <spdlog/spdlog.h>

#include "chat/chat_list.h"
#include "chat/input_box.h"
#include "compare/compare_view.h"
#include "dialogs/settings_dialog.h"
#include "moelens/devices.h"
#include "moelens/version.h"
#include "viz/devices_panel.h"
#include "viz/expert_load.h"
#include "viz/latent_cache.h"
#include "viz/routing_map.h"
#include "workers/engine_worker.h"
#include "workers/storage_worker.h"

using moelens::storage::Store;

namespace {

// Token events are taken from the engine at display rate (~30 Hz).
constexpr int kDrainIntervalMs = 33;

}  // namespace

MainWindow::MainWindow(const AppPaths& paths, EngineWorker* engine, StorageWorker* storage, Options options,
                       QWidget* parent)
    : QMainWindow(parent), m_paths(paths), m_engine(engine), m_storage(storage), m_options(options)
{
    setWindowTitle(QStringLiteral("MoE Lens"));
    setWindowIcon(QIcon(QStringLiteral(":/moelens/icons/moelens.svg")));
    setObjectName(QStringLiteral("MainWindow"));
    setDockNestingEnabled(true);

    m_drainTimer = new QTimer(this);
    m_drainTimer->setInterval(kDrainIntervalMs);
    connect(m_drainTimer, &QTimer::timeout, this, &MainWindow::drainTokens);

    createCentre();
    createDocks();
    createMenus();
    createStatusBar();
    connectWorkers();

    resize(1280, 800);
    restoreLayout();
    m_conversation->showWelcome(welcomeHtml());
    updateInputState();

    // Settings first: the threads and context size apply to the model load.
    m_storage->post([this, load = m_options.loadModelOnStart](Store& s) {
        const std::string json = s.get_string(kGenerationSettingsKey, "{}");
        const std::string recent = s.get_string(kRecentModelsKey, "[]");
        const std::string last = s.get_string(kLastModelKey, "");
        StorageWorker::reply(this, [this, json, recent, last, load] {
            m_settings = GenerationSettings::fromJson(QJsonDocument::fromJson(QByteArray::fromStdString(json)).object());
            m_recentModels.clear();
            for (const QJsonValue& v : QJsonDocument::fromJson(QByteArray::fromStdString(recent)).array())
                m_recentModels << v.toString();
            rebuildRecentMenu();
            sendEngineSettings();
            if (load) startupModel(QString::fromStdString(last));
        });
    });
    refreshChatList();
    refreshComparisons();
}

MainWindow::~MainWindow()
{
    // Storage jobs capture this window to post their results back. Let the ones
    // already queued finish while the window still exists (their replies are then
    // dropped with it); a short wait, and only when the window goes away.
    QSemaphore drained;
    QMetaObject::invokeMethod(m_storage, [&drained] { drained.release(); }, Qt::QueuedConnection);
    drained.acquire();
}

void MainWindow::createCentre()
{
    m_chatList = new ChatList(this);
    connect(m_chatList, &ChatList::chatActivated, this, &MainWindow::openChat);
    connect(m_chatList, &ChatList::newChatRequested, this, &MainWindow::newChat);
    connect(m_chatList, &ChatList::searchChanged, this, &MainWindow::runSearch);
    connect(m_chatList, &ChatList::searchHitActivated, this,
            [this](moelens::storage::ChatId chat, moelens::storage::MessageId message) {
                // Show the branch holding the hit, then the chat.
                m_storage->post([message](Store& s) { s.select_branch(message); });
                openChat(chat);
            });
    connect(m_chatList, &ChatList::renameRequested, this, [this](moelens::storage::ChatId id, const QString& title) {
        m_storage->post([this, id, title = title.toStdString()](Store& s) {
            s.rename_chat(id, title);
            StorageWorker::reply(this, [this] { refreshChatList(); });
        });
    });
    connect(m_chatList, &ChatList::pinRequested, this, [this](moelens::storage::ChatId id, bool pinned) {
        m_storage->post([this, id, pinned](Store& s) {
            s.set_chat_pinned(id, pinned);
            StorageWorker::reply(this, [this] { refreshChatList(); });
        });
    });
    connect(m_chatList, &ChatList::deleteRequested, this, &MainWindow::deleteChat);
    connect(m_chatList, &ChatList::exportRequested, this, &MainWindow::exportChatsDialog);

    m_conversation = new ConversationView(this);
    connect(m_conversation, &ConversationView::messageClicked, this, [this](moelens::storage::MessageId id) {
        for (const ShownMessage& m : m_conversation->messages())
            if (m.message.id == id && m.message.role == moelens::storage::Role::Assistant) selectAnswer(id);
    });
    connect(m_conversation, &ConversationView::editRequested, this, &MainWindow::beginEdit);
    connect(m_conversation, &ConversationView::regenerateRequested, this, &MainWindow::regenerate);
    connect(m_conversation, &ConversationView::branchRequested, this, &MainWindow::stepBranch);

    m_input = new InputBox(this);
    m_input->setObjectName(QStringLiteral("input"));
    m_input->setFixedHeight(72);
    connect(m_input, &InputBox::submitted, this, &MainWindow::sendMessage);
    m_send = new QPushButton(tr("Send"), this);
    m_send->setObjectName(QStringLiteral("sendButton"));
    m_send->setToolTip(tr("Send (Enter)"));
    connect(m_send, &QPushButton::clicked, this, &MainWindow::sendMessage);
    m_stop = new QPushButton(tr("Stop"), this);
    m_stop->setObjectName(QStringLiteral("stopButton"));
    m_stop->setToolTip(tr("Stop the answer (Esc)"));
    connect(m_stop, &QPushButton::clicked, this, &MainWindow::stopGeneration);
    m_inputHint = new QLabel(this);
    m_inputHint->setObjectName(QStringLiteral("inputHint"));
    m_inputHint->setWordWrap(true);
    m_inputHint->setForegroundRole(QPalette::PlaceholderText);

    auto* buttons = new QVBoxLayout;
    buttons->addWidget(m_send);
    buttons->addWidget(m_stop);
    buttons->addStretch();
    auto* inputRow = new QHBoxLayout;
    inputRow->addWidget(m_input, 1);
    inputRow->addLayout(buttons);
    auto* centre = new QWidget(this);
    auto* centreLayout = new QVBoxLayout(centre);
    centreLayout->setContentsMargins(0, 0, 6, 6);
    centreLayout->addWidget(m_conversation, 1);
    centreLayout->addWidget(m_inputHint);
    centreLayout->addLayout(inputRow);

    // The chat is the first tab; compare tabs open beside it (closable, the chat is not).
    m_tabs = new QTabWidget(this);
    m_tabs->setObjectName(QStringLiteral("centreTabs"));
    m_tabs->setDocumentMode(true);
    m_tabs->setTabsClosable(true);
    m_tabs->addTab(centre, tr("Chat"));
    m_tabs->tabBar()->setTabButton(0, QTabBar::RightSide, nullptr);
    m_tabs->tabBar()->setTabButton(0, QTabBar::LeftSide, nullptr);
    connect(m_tabs, &QTabWidget::tabCloseRequested, this, &MainWindow::closeCompareTab);
    connect(m_tabs, &QTabWidget::currentChanged, this, &MainWindow::onTabChanged);

    auto* split = new QSplitter(Qt::Horizontal, this);
    split->setObjectName(QStringLiteral("centreSplitter"));
    split->addWidget(m_chatList);
    split->addWidget(m_tabs);
    split->setStretchFactor(0, 0);
    split->setStretchFactor(1, 1);
    split->setSizes({220, 600});
    m_chatList->setMinimumWidth(160);
    setCentralWidget(split);
}

QDockWidget* MainWindow::addInsideDock(const QString& objectName, const QString& title, QWidget* content,
                                       Qt::DockWidgetArea area)
{
    auto* dock = new QDockWidget(title, this);
    dock->setObjectName(objectName);
    dock->setWidget(content);
    addDockWidget(area, dock);
    m_docks.append(dock);
    return dock;
}

void MainWindow::createDocks()
{
    m_routing = new RoutingMapWidget(this);
    m_load = new ExpertLoadWidget(this);
    m_cache = new LatentCacheWidget(this);
    m_devices = new DevicesWidget(this);
    QDockWidget* routing = addInsideDock("routingDock", tr("Routing map"), m_routing, Qt::RightDockWidgetArea);
    QDockWidget* load = addInsideDock("expertLoadDock", tr("Expert load"), m_load, Qt::RightDockWidgetArea);
    QDockWidget* cache = addInsideDock("latentCacheDock", tr("Latent cache"), m_cache, Qt::BottomDockWidgetArea);
    QDockWidget* devices = addInsideDock("devicesDock", tr("Devices"), m_devices, Qt::BottomDockWidgetArea);
    // The right column runs the full height (the routing map needs rows for every
    // expert); the cache and devices panels share the bottom as tabs, each getting
    // the full width for its chart.
    setCorner(Qt::BottomRightCorner, Qt::RightDockWidgetArea);
    setCorner(Qt::TopRightCorner, Qt::RightDockWidgetArea);
    splitDockWidget(routing, load, Qt::Vertical);
    tabifyDockWidget(cache, devices);
    cache->raise();
    resizeDocks({routing}, {500}, Qt::Horizontal);
    resizeDocks({routing, load}, {380, 400}, Qt::Vertical);
    resizeDocks({cache}, {250}, Qt::Vertical);
    connect(m_routing, &RoutingMapWidget::tokenSelected, m_devices, &DevicesWidget::selectToken);
    connect(m_routing, &RoutingMapWidget::layerChanged, this, &MainWindow::applyTokenColouring);
}

void MainWindow::createMenus()
{
    QMenu* file = menuBar()->addMenu(tr("&File"));
    QAction* newChatAction = file->addAction(tr("&New Chat"), this, &MainWindow::newChat);
    newChatAction->setShortcut(QKeySequence::New);
    QAction* find = file->addAction(tr("&Search Chats"), this, [this] { m_chatList->focusSearch(); });
    find->setShortcut(QKeySequence::Find);
    file->addSeparator();
    file->addAction(tr("&Export Chat..."), this, [this] {
            if (m_chat == 0)
                statusBar()->showMessage(tr("Open a chat to export it, or use Export All Chats."), 5000);
            else
                exportChatsDialog(m_chat, QString::fromStdString(m_chatInfo.title));
        })->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_E));
    file->addAction(tr("Export &All Chats..."), this, [this] { exportChatsDialog(0, {}); });
    file->addAction(tr("&Import Chats..."), this, &MainWindow::importChatsDialog);
    file->addSeparator();
    file->addAction(tr("&Settings..."), this, &MainWindow::showSettings)->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_Comma));
    file->addSeparator();
    QAction* quit = file->addAction(tr("&Quit"), this, &QWidget::close);
    quit->setShortcut(QKeySequence::Quit);

    QMenu* chat = menuBar()->addMenu(tr("&Chat"));
    QAction* regen = chat->addAction(tr("&Regenerate Last Answer"), this, &MainWindow::regenerateLast);
    regen->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_R));
    chat->addAction(tr("S&top"), this, &MainWindow::stopGeneration)->setShortcut(QKeySequence(Qt::Key_Escape));
    chat->addSeparator();
    m_compareAction = chat->addAction(QIcon(QStringLiteral(":/moelens/icons/moelens.svg")), tr("Co&mpare..."), this,
                                      &MainWindow::openCompare);
    m_compareAction->setObjectName(QStringLiteral("compareAction"));
    m_compareAction->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_C));
    m_compareAction->setToolTip(tr("Compare generation and MoE settings side by side on this chat's last message "
                                   "(Ctrl+Shift+C)"));
    m_savedComparisons = chat->addMenu(tr("Saved Compa&risons"));
    m_savedComparisons->setObjectName(QStringLiteral("savedComparisonsMenu"));
    QToolBar* tools = addToolBar(tr("Tools"));
    tools->setObjectName(QStringLiteral("mainToolBar"));
    tools->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    tools->addAction(m_compareAction);

    QMenu* model = menuBar()->addMenu(tr("&Model"));
    model->addAction(tr("&Open Model Folder..."), this, &MainWindow::openModelFolder)->setShortcut(QKeySequence::Open);
    m_recentMenu = model->addMenu(tr("&Recent Models"));
    model->addAction(tr("Use the &Built-in Model (trained demo)"), this, &MainWindow::loadBuiltinModel);
    model->addAction(tr("Use the Random-Weight &Demo Model"), this, &MainWindow::loadDemoModel);
    model->addSeparator();
    m_checkAttention = model->addAction(tr("Check &Absorbed vs Naive MLA on the Selected Answer"), this,
                                        &MainWindow::checkAttentionPaths);

    QMenu* view = menuBar()->addMenu(tr("&View"));
    for (QDockWidget* dock : m_docks) view->addAction(dock->toggleViewAction());
    view->addSeparator();
    m_colourTokens = view->addAction(tr("&Colour Answer by Top-1 Expert"));
    m_colourTokens->setCheckable(true);
    m_colourTokens->setToolTip(tr("Colours the selected answer's tokens by their top-1 expert at the routing map's layer"));
    connect(m_colourTokens, &QAction::toggled, this, &MainWindow::applyTokenColouring);

    QMenu* help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&Keyboard Shortcuts"), this, &MainWindow::showShortcuts);
    help->addAction(tr("&About MoE Lens"), this, &MainWindow::showAbout);
}

void MainWindow::createStatusBar()
{
    m_modelLabel = new QLabel(tr("No model"), this);
    m_modelLabel->setObjectName(QStringLiteral("modelLabel"));
    m_progress = new QProgressBar(this);
    m_progress->setMaximumWidth(220);
    m_progress->setTextVisible(true);
    m_progress->hide();
    m_cancelLoad = new QToolButton(this);
    m_cancelLoad->setText(tr("Cancel"));
    m_cancelLoad->setToolTip(tr("Cancel loading the model"));
    m_cancelLoad->hide();
    connect(m_cancelLoad, &QToolButton::clicked, this, [this] { m_engine->cancelLoad(); });
    const moelens::DeviceReport& devices = moelens::probe_devices();
    m_deviceLabel = new QLabel(devices.cuda_usable ? tr("GPU: %1").arg(QString::fromStdString(devices.gpus.front().name))
                                                   : tr("CPU (%1 threads)").arg(devices.cpu_threads));
    m_deviceLabel->setToolTip(QString::fromStdString(devices.reason));
    statusBar()->addPermanentWidget(m_progress);
    statusBar()->addPermanentWidget(m_cancelLoad);
    statusBar()->addPermanentWidget(m_modelLabel);
    statusBar()->addPermanentWidget(m_deviceLabel);
}

void MainWindow::connectWorkers()
{
    connect(m_engine, &EngineWorker::loadStarted, this, [this](const QString& dir) {
        m_loading = true;
        m_progress->setRange(0, 0);
        m_progress->show();
        m_cancelLoad->show();
        m_modelLabel->setText(tr("Loading %1...").arg(dir));
        updateInputState();
    }, Qt::QueuedConnection);
    connect(m_engine, &EngineWorker::loadProgress, this, [this](qint64 done, qint64 total, const QString& stage) {
        // Progress bars take int: scale byte counts down to per-mille.
        m_progress->setRange(0, total > 0 ? 1000 : 0);
        m_progress->setValue(total > 0 ? int(1000 * done / total) : 0);
        m_progress->setFormat(stage + QStringLiteral(" %p%"));
    }, Qt::QueuedConnection);
    connect(m_engine, &EngineWorker::modelLoaded, this, &MainWindow::onModelLoaded, Qt::QueuedConnection);
    const auto loadEnded = [this] {
        m_loading = false;
        m_progress->hide();
        m_cancelLoad->hide();
        m_modelLabel->setText(m_model ? QString::fromStdString(m_model->dir.filename().string()) : tr("No model"));
        updateInputState();
    };
    connect(m_engine, &EngineWorker::loadFailed, this, [this, loadEnded](const QString& dir, const QString& message) {
        loadEnded();
        showError(tr("The model could not be loaded"), tr("%1\n\n%2").arg(dir, message));
    }, Qt::QueuedConnection);
    connect(m_engine, &EngineWorker::loadCancelled, this, [this, loadEnded](const QString&) {
        loadEnded();
        statusBar()->showMessage(tr("Loading cancelled."), 5000);
    }, Qt::QueuedConnection);
    connect(m_engine, &EngineWorker::generationFinished, this, &MainWindow::onGenerationFinished, Qt::QueuedConnection);
    connect(m_engine, &EngineWorker::devicesApplied, this, [this, cpu = m_deviceLabel->text()](int devices, const QString& problem) {
        m_deviceLabel->setText(devices > 1 ? tr("%1 · %2 virtual devices").arg(cpu).arg(devices) : cpu);
        if (!problem.isEmpty()) showError(tr("Virtual devices"), problem);
    }, Qt::QueuedConnection);
    connect(m_engine, &EngineWorker::compareFinished, this, [this] {
        m_comparing = false;
        updateInputState();
    }, Qt::QueuedConnection);
    connect(m_engine, &EngineWorker::inspected, this, &MainWindow::onInspected, Qt::QueuedConnection);
    connect(m_engine, &EngineWorker::inspectFailed, this, [this](const QString& dir, const QString& message) {
        statusBar()->clearMessage();
        showError(tr("This folder cannot be used as a model"), tr("%1\n\n%2").arg(dir, message));
    }, Qt::QueuedConnection);
    connect(m_engine, &EngineWorker::attentionChecked, this, &MainWindow::onAttentionChecked, Qt::QueuedConnection);
    connect(m_storage, &StorageWorker::failed, this, [this](const QString& message) {
        if (m_sending) {  // the message was not stored: no answer will start
            m_sending = false;
            updateInputState();
        }
        showError(tr("Chat database"), message);
    }, Qt::QueuedConnection);
    connect(m_storage, &StorageWorker::opened, this, [this](const QString& message) {
        if (!message.isEmpty()) statusBar()->showMessage(message, 15000);
    }, Qt::QueuedConnection);
}

QString MainWindow::welcomeHtml() const
{
    return tr("<h2>Welcome to MoE Lens</h2>"
              "<p>MoE Lens runs DeepSeek-V2-family Mixture-of-Experts models on this computer and shows, for every "
              "token, what happens inside:</p>"
              "<ul>"
              "<li><b>Routing map</b>: which experts each token was sent to, layer by layer (shade = gate weight). "
              "Hover a token for its experts and weights.</li>"
              "<li><b>Expert load</b>: how often each expert fired in the answer or the whole chat, and how balanced "
              "that is.</li>"
              "<li><b>Latent cache</b>: the bytes the compressed MLA cache holds, against a plain multi-head cache.</li>"
              "<li><b>Devices</b>: which device (expert group) each chosen expert lives on.</li>"
              "</ul>"
              "<p>The <b>built-in model</b> is a 12-million-parameter DeepSeek-V2 that MoE Lens's authors trained on "
              "the Python documentation: it answers in naive, often wrong, Python-docs English, but its experts have "
              "specialised (punctuation, code, word pieces), which the routing map shows. To talk to a real model, download "
              "<b>DeepSeek-V2-Lite-Chat</b> from Hugging Face and choose <i>Model &gt; Open Model Folder...</i> "
              "(the folder with config.json and the .safetensors files).</p>"
              "<p>Type a message below and press Enter.</p>");
}

void MainWindow::updateInputState()
{
    const bool ready = m_model.has_value() && !m_loading && !m_generating && !m_sending && !m_comparing;
    m_input->setReadOnly(!ready);
    m_send->setEnabled(ready);
    m_stop->setVisible(m_generating);
    m_stop->setEnabled(m_generating);
    m_conversation->setActionsEnabled(!m_generating && !m_sending, ready);
    m_checkAttention->setEnabled(ready);
    QString hint;
    if (m_loading)
        hint = tr("Loading the model; you can type once it is ready.");
    else if (!m_model)
        hint = tr("No model is loaded. Choose Model > Open Model Folder..., or Model > Use the Built-in Model.");
    else if (m_generating)
        hint = tr("Writing the answer. Esc or Stop ends it.");
    else if (m_comparing)
        hint = tr("A comparison is running (Esc stops it); the chat answers once it is done.");
    else if (m_editing)
        hint = tr("Editing a message: Enter sends it as a new branch, Esc cancels.");
    m_inputHint->setText(hint);
    m_inputHint->setVisible(!hint.isEmpty());
    m_compareAction->setEnabled(m_model.has_value() && !m_loading);
    for (CompareView* v : compareViews())
        v->setEngineBusy(!m_model || m_loading || m_generating || m_sending || (m_comparing && !v->isRunning()));
}

void MainWindow::showError(const QString& title, const QString& message)
{
    spdlog::warn("{}: {}", title.toStdString(), message.toStdString());
    statusBar()->showMessage(title + QStringLiteral(": ") + message.section('\n', 0, 0), 15000);
    if (m_closing) return;
    // Non-modal: the window keeps working (and a test driving it is not blocked).
    auto* box = new QMessageBox(QMessageBox::Warning, title, message, QMessageBox::Ok, this);
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->setObjectName(QStringLiteral("errorBox"));
    box->open();
}

void MainWindow::showShortcuts()
{
    const auto key = [](const QKeySequence& k) { return k.toString(QKeySequence::NativeText).toHtmlEscaped(); };
    QString rows;
    const auto row = [&](const QString& k, const QString& what) { rows += QStringLiteral("<tr><td><b>%1</b></td><td>%2</td></tr>").arg(k, what); };
    row(key(QKeySequence::New), tr("New chat"));
    row(key(QKeySequence::Find), tr("Search all chats"));
    row(key(QKeySequence(Qt::CTRL | Qt::Key_R)), tr("Regenerate the last answer (as a new branch)"));
    row(tr("Esc"), tr("Stop the answer being written or the comparison running; cancel editing"));
    row(tr("Enter"), tr("Send the message"));
    row(tr("Shift+Enter"), tr("New line in the message"));
    row(key(QKeySequence(Qt::CTRL | Qt::Key_E)), tr("Export the chat (Markdown or JSON)"));
    row(key(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_C)), tr("Compare settings side by side (a compare tab)"));
    row(key(QKeySequence(Qt::CTRL | Qt::Key_Return)), tr("Compare tab: run every column"));
    row(key(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_N)), tr("Compare tab: add a column"));
    row(key(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_W)), tr("Compare tab: remove the last column"));
    row(key(QKeySequence::Open), tr("Open a model folder"));
    row(key(QKeySequence(Qt::CTRL | Qt::Key_Comma)), tr("Settings"));
    row(key(QKeySequence::Quit), tr("Quit"));
    QMessageBox box(QMessageBox::NoIcon, tr("Keyboard Shortcuts"), QStringLiteral("<table cellspacing=6>%1</table>").arg(rows),
                    QMessageBox::Close, this);
    box.setObjectName(QStringLiteral("shortcutsBox"));
    box.exec();
}

void MainWindow::showAbout()
{
    QMessageBox::about(this, tr("About MoE Lens"),
                       tr("<h3>MoE Lens %1</h3><p>Runs DeepSeek-V2-family Mixture-of-Experts models locally "
                          "and shows which experts fire and what the latent attention cache holds.</p>")
                           .arg(QStringLiteral(MOELENS_VERSION)));
}

void MainWindow::showSettings()
{
    const QString chatPrompt = QString::fromStdString(m_chatInfo.system_prompt);
    const bool hasChat = m_chat != 0;
    m_storage->post([this, chatPrompt, hasChat](Store& s) {
        std::vector<moelens::storage::Preset> presets = s.list_presets();
        StorageWorker::reply(this, [this, chatPrompt, hasChat, presets] {
            SettingsDialog dialog(m_settings, chatPrompt, hasChat, presets, this);
            connect(&dialog, &SettingsDialog::presetSaved, this, [this](const QString& name, const QString& json) {
                m_storage->post([name = name.toStdString(), json = json.toStdString()](Store& s) { s.save_preset(name, json); });
            });
            connect(&dialog, &SettingsDialog::presetDeleted, this, [this](const QString& name) {
                m_storage->post([name = name.toStdString()](Store& s) { s.delete_preset(name); });
            });
            if (dialog.exec() != QDialog::Accepted) return;
            const bool reloadNeeded = dialog.settings().threads != m_settings.threads ||
                                      dialog.settings().contextTokens != m_settings.contextTokens;
            m_settings = dialog.settings();
            saveSettings();
            sendEngineSettings();
            if (hasChat && dialog.chatSystemPrompt() != chatPrompt) {
                const moelens::storage::ChatId chat = m_chat;
                m_chatInfo.system_prompt = dialog.chatSystemPrompt().toStdString();
                m_storage->post([chat, prompt = m_chatInfo.system_prompt](Store& s) { s.set_chat_system_prompt(chat, prompt); });
            }
            if (reloadNeeded && m_model)
                statusBar()->showMessage(tr("Threads and context size apply when a model is loaded next."), 8000);
        });
    });
}

void MainWindow::setGenerationSettings(const GenerationSettings& settings)
{
    m_settings = settings;
    saveSettings();
    sendEngineSettings();
}

void MainWindow::sendEngineSettings()
{
    // Threads and context size apply at the next load; the devices at once.
    QMetaObject::invokeMethod(m_engine, "setThreads", Qt::QueuedConnection, Q_ARG(int, m_settings.threads));
    QMetaObject::invokeMethod(m_engine, "setContextTokens", Qt::QueuedConnection, Q_ARG(int, m_settings.contextTokens));
    QMetaObject::invokeMethod(m_engine, "setDevices", Qt::QueuedConnection, Q_ARG(int, m_settings.virtualDevices),
                              Q_ARG(double, m_settings.deviceMemoryMiB));
}

void MainWindow::saveSettings()
{
    const std::string json = QJsonDocument(m_settings.toJson()).toJson(QJsonDocument::Compact).toStdString();
    m_storage->post([json](Store& s) { s.set_setting(kGenerationSettingsKey, json); });
}

void MainWindow::restoreLayout()
{
    QSettings s(m_paths.layoutFile(), QSettings::IniFormat);
    if (s.value("layoutVersion").toInt() != kLayoutVersion) return;
    restoreGeometry(s.value("geometry").toByteArray());
    restoreState(s.value("state").toByteArray(), kLayoutVersion);
}

void MainWindow::saveLayout() const
{
    QSettings s(m_paths.layoutFile(), QSettings::IniFormat);
    s.setValue("layoutVersion", kLayoutVersion);
    s.setValue("geometry", saveGeometry());
    // The chat's layout is the one kept: a compare tab's is set up anew each time.
    s.setValue("state", m_compareLayoutShown ? m_chatLayout : saveState(kLayoutVersion));
    s.sync();
}

void MainWindow::closeEvent(QCloseEvent* event)
{
    m_closing = true;
    saveLayout();
    if (m_generating) m_engine->requestStop();
    event->accept();
}
