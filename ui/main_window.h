#pragma once
// The main window: menus, status bar, the chat area in the centre and the
// "seeing inside" docks around it. Geometry and dock layout are restored from the
// profile's layout file on the next start.
#include <QMainWindow>

class QDockWidget;
class QLabel;

class MainWindow : public QMainWindow {
    Q_OBJECT

public:
    explicit MainWindow(const QString& layoutFile, QWidget* parent = nullptr);

    QList<QDockWidget*> insideDocks() const { return m_docks; }

protected:
    void closeEvent(QCloseEvent* event) override;

private:
    void createMenus();
    QDockWidget* addInsideDock(const QString& objectName, const QString& title, const QString& blurb,
                               Qt::DockWidgetArea area);
    void restoreLayout();
    void saveLayout() const;
    void showShortcuts();
    void showAbout();

    QString m_layoutFile;
    QList<QDockWidget*> m_docks;
    QLabel* m_deviceLabel = nullptr;
};
