#include "workers/model_fingerprint.h"

#include <QCryptographicHash>
#include <QFile>

std::string modelFingerprint(const QString& modelDir)
{
    QFile config(modelDir + QStringLiteral("/config.json"));
    if (!config.open(QIODevice::ReadOnly)) return {};
    return QCryptographicHash::hash(config.readAll(), QCryptographicHash::Sha256).toHex().left(16).toStdString();
}
