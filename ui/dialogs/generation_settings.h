#pragma once
// The user's generation settings: sampling, the default system prompt, CPU threads,
// context size. Stored as one JSON object in the store's settings (key
// "generation") and, for named presets, as the preset's sampling JSON.
#include <QJsonObject>
#include <QString>

#include "moelens/sampling.h"

struct GenerationSettings {
    double temperature = 0.7;
    int topK = 40;
    double topP = 0.95;
    double minP = 0.0;
    double repetitionPenalty = 1.05;
    qint64 seed = -1;  // -1: a new random seed for every answer
    int maxTokens = 256;
    QString systemPrompt;  // for new chats; each chat keeps its own copy
    int threads = 0;       // 0: one per hardware thread
    int contextTokens = 4096;
    // Routed experts over virtual devices (moelens/expert_parallel.h): -1 = as many
    // as the model has expert groups when it routes by group (the paper's layout),
    // else one; 0 or 1 = one device; 2.. = that many.
    int virtualDevices = -1;
    double deviceMemoryMiB = 0;  // memory of each virtual device; 0 = no limit

    QJsonObject samplingJson() const;  // what a preset and a run record keep
    QJsonObject toJson() const;
    static GenerationSettings fromJson(const QJsonObject& o);
    void applySampling(const QJsonObject& o);
    // The engine's parameters; `seed` is the one chosen for this answer.
    moelens::SamplingParams samplingParams(std::uint64_t seed) const;
};

inline constexpr const char* kGenerationSettingsKey = "generation";
inline constexpr const char* kRecentModelsKey = "models.recent";
inline constexpr const char* kLastModelKey = "models.last";
