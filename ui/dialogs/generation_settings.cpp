#include "dialogs/generation_settings.h"

#include <algorithm>

QJsonObject GenerationSettings::samplingJson() const
{
    return QJsonObject{{"temperature", temperature},      {"top_k", topK},   {"top_p", topP},
                       {"min_p", minP},                   {"repetition_penalty", repetitionPenalty},
                       {"seed", seed},                    {"max_tokens", maxTokens}};
}

QJsonObject GenerationSettings::toJson() const
{
    QJsonObject o = samplingJson();
    o["system_prompt"] = systemPrompt;
    o["threads"] = threads;
    o["context_tokens"] = contextTokens;
    o["virtual_devices"] = virtualDevices;
    o["device_memory_mib"] = deviceMemoryMiB;
    return o;
}

void GenerationSettings::applySampling(const QJsonObject& o)
{
    temperature = o.value("temperature").toDouble(temperature);
    topK = o.value("top_k").toInt(topK);
    topP = o.value("top_p").toDouble(topP);
    minP = o.value("min_p").toDouble(minP);
    repetitionPenalty = o.value("repetition_penalty").toDouble(repetitionPenalty);
    seed = o.value("seed").toInteger(seed);
    maxTokens = o.value("max_tokens").toInt(maxTokens);
}

GenerationSettings GenerationSettings::fromJson(const QJsonObject& o)
{
    GenerationSettings s;
    s.applySampling(o);
    s.systemPrompt = o.value("system_prompt").toString();
    s.threads = o.value("threads").toInt(0);
    s.contextTokens = o.value("context_tokens").toInt(4096);
    s.virtualDevices = std::max(-1, o.value("virtual_devices").toInt(-1));
    s.deviceMemoryMiB = std::max(0.0, o.value("device_memory_mib").toDouble(0));
    return s;
}

moelens::SamplingParams GenerationSettings::samplingParams(std::uint64_t chosenSeed) const
{
    moelens::SamplingParams p;
    p.temperature = float(temperature);
    p.top_k = topK;
    p.top_p = float(topP);
    p.min_p = float(minP);
    p.repetition_penalty = float(repetitionPenalty);
    p.seed = chosenSeed;
    p.max_new_tokens = maxTokens;
    return p;
}
