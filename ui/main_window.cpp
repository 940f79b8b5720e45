#include "main_window.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDockWidget>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QSettings>
#include <QStatusBar>
#include <QVBoxLayout>

#include "moelens/devices.h"
#include "moelens/version.h"

namespace {

// Bumped whenever the set of docks changes, so an old saved layout is ignored
// instead of restoring docks into the wrong places.
constexpr int kLayoutVersion = 1;

QLabel* makeBlurb(const QString& text)
{
    auto* label = new QLabel(text);
    label->setWordWrap(true);
    label->setAlignment(Qt::AlignCenter);
    label->setMargin(12);
    label->setForegroundRole(QPalette::PlaceholderText);
    return label;
}

}  // namespace

MainWindow::MainWindow(const QString& layoutFile, QWidget* parent)
    : QMainWindow(parent), m_layoutFile(layoutFile)
{
    setWindowTitle(QStringLiteral("MoE Lens"));
    setWindowIcon(QIcon(QStringLiteral(":/moelens/icons/moelens.svg")));
    setObjectName(QStringLiteral("MainWindow"));
    setDockNestingEnabled(true);

    setCentralWidget(makeBlurb(tr("No chat open.\nOpen a model folder or use the built-in demo model to start.")));

    addInsideDock("routingDock", tr("Routing map"),
                  tr("Which experts fire for every token in every MoE layer."), Qt::RightDockWidgetArea);
    addInsideDock("expertLoadDock", tr("Expert load"),
                  tr("How often each expert fired, per layer, with the balance figures."), Qt::RightDockWidgetArea);
    addInsideDock("latentCacheDock", tr("Latent cache"),
                  tr("Bytes held by the MLA latent cache against a plain multi-head cache."),
                  Qt::BottomDockWidgetArea);
    addInsideDock("devicesDock", tr("Devices"),
                  tr("Which device each chosen expert lives on, against the device limit."), Qt::BottomDockWidgetArea);

    createMenus();

    const moelens::DeviceReport& devices = moelens::probe_devices();
    m_deviceLabel = new QLabel(devices.cuda_usable ? tr("GPU: %1").arg(QString::fromStdString(devices.gpus.front().name))
                                                   : tr("CPU (%1 threads)").arg(devices.cpu_threads));
    m_deviceLabel->setToolTip(QString::fromStdString(devices.reason));
    statusBar()->addPermanentWidget(m_deviceLabel);
    statusBar()->showMessage(tr("Ready"));

    resize(1280, 800);
    restoreLayout();
}

QDockWidget* MainWindow::addInsideDock(const QString& objectName, const QString& title, const QString& blurb,
                                       Qt::DockWidgetArea area)
{
    auto* dock = new QDockWidget(title, this);
    dock->setObjectName(objectName);
    dock->setWidget(makeBlurb(blurb));
    addDockWidget(area, dock);
    m_docks.append(dock);
    return dock;
}

void MainWindow::createMenus()
{
    QMenu* file = menuBar()->addMenu(tr("&File"));
    QAction* quit = file->addAction(tr("&Quit"), this, &QWidget::close);
    quit->setShortcut(QKeySequence::Quit);

    QMenu* view = menuBar()->addMenu(tr("&View"));
    for (QDockWidget* dock : m_docks) view->addAction(dock->toggleViewAction());

    QMenu* help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&Keyboard Shortcuts"), this, &MainWindow::showShortcuts);
    help->addAction(tr("&About MoE Lens"), this, &MainWindow::showAbout);
}

void MainWindow::showShortcuts()
{
    QMessageBox::information(this, tr("Keyboard Shortcuts"),
                             tr("<table>"
                                "<tr><td><b>%1</b></td><td>Quit</td></tr>"
                                "</table>")
                                 .arg(QKeySequence(QKeySequence::Quit).toString(QKeySequence::NativeText)));
}

void MainWindow::showAbout()
{
    QMessageBox::about(this, tr("About MoE Lens"),
                       tr("<h3>MoE Lens %1</h3><p>Runs DeepSeek-V2-family Mixture-of-Experts models locally "
                          "and shows which experts fire and what the latent attention cache holds.</p>")
                           .arg(QStringLiteral(MOELENS_VERSION)));
}

void MainWindow::restoreLayout()
{
    QSettings s(m_layoutFile, QSettings::IniFormat);
    if (s.value("layoutVersion").toInt() != kLayoutVersion) return;
    restoreGeometry(s.value("geometry").toByteArray());
    restoreState(s.value("state").toByteArray(), kLayoutVersion);
}

void MainWindow::saveLayout() const
{
    QSettings s(m_layoutFile, QSettings::IniFormat);
    s.setValue("layoutVersion", kLayoutVersion);
    s.setValue("geometry", saveGeometry());
    s.setValue("state", saveState(kLayoutVersion));
    s.sync();
}

void MainWindow::closeEvent(QCloseEvent* event)
{
    saveLayout();
    event->accept();
}
