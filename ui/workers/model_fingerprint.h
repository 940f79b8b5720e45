#pragma once
// What a run record names the model by besides its path: the first 16 hex digits of
// the SHA-256 of its config.json ("" when it cannot be read). Any thread.
#include <QString>

#include <string>

std::string modelFingerprint(const QString& modelDir);
