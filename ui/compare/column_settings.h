#pragma once
// One compare column's settings: sampling (as a chat answer's, with a fixed seed so
// a column can be run again to the same tokens) and the engine's MoE settings.
// Stored as two JSON objects in the comparison's column row.
#include <QJsonObject>
#include <QString>

#include "dialogs/generation_settings.h"
#include "moelens/moe_settings.h"
#include "workers/compare_types.h"

struct ColumnSettings {
    GenerationSettings sampling;  // temperature .. max tokens; seed >= 0
    moelens::MoeSettings moe;

    QJsonObject samplingJson() const { return sampling.samplingJson(); }
    QJsonObject moeJson() const;
    // Both objects of a stored column; unknown keys are ignored, a bad disabled-experts
    // list throws moelens::Error naming the item.
    static ColumnSettings fromJson(const QJsonObject& sampling, const QJsonObject& moe);
    CompareColumnRequest request() const;
};

// Column labels: A, B, C ...
QString columnLetter(int column);
