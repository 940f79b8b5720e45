#pragma once
// The check report shown before a model folder is loaded: architecture, parameters
// (total and active per token), weight dtype, size on disk, the memory it will need
// and the device it will run on. Load or Cancel.
#include <QDialog>

#include "moelens/model.h"

class ModelCheckDialog : public QDialog {
    Q_OBJECT

public:
    ModelCheckDialog(const moelens::ModelInfo& info, int contextTokens, QWidget* parent = nullptr);

    static QString reportHtml(const moelens::ModelInfo& info, int contextTokens);
};
