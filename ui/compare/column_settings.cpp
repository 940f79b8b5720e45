#include "compare/column_settings.h"

QJsonObject ColumnSettings::moeJson() const
{
    // Zeros mean "the model's own" and are left out, so {} is the default routing.
    QJsonObject o;
    if (moe.experts_per_token > 0) o["experts_per_token"] = moe.experts_per_token;
    if (moe.device_limit > 0) o["device_limit"] = moe.device_limit;
    if (!moe.disabled.empty()) o["disabled"] = QString::fromStdString(moelens::format_disabled_experts(moe.disabled));
    return o;
}

ColumnSettings ColumnSettings::fromJson(const QJsonObject& sampling, const QJsonObject& moe)
{
    ColumnSettings s;
    s.sampling.applySampling(sampling);
    if (s.sampling.seed < 0) s.sampling.seed = 0;
    s.moe.experts_per_token = moe.value("experts_per_token").toInt(0);
    s.moe.device_limit = moe.value("device_limit").toInt(0);
    s.moe.disabled = moelens::parse_disabled_experts(moe.value("disabled").toString().toStdString());
    return s;
}

CompareColumnRequest ColumnSettings::request() const
{
    CompareColumnRequest r;
    r.sampling = sampling.samplingParams(std::uint64_t(std::max<qint64>(0, sampling.seed)));
    r.moe = moe;
    return r;
}

QString columnLetter(int column) { return QString(QChar('A' + column)); }
