#include "trace/device_traffic.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

#include <algorithm>

namespace {

// Counts travel as JSON numbers (doubles): exact below 2^53, far above any count here.
QJsonArray toArray(const std::vector<std::uint64_t>& v)
{
    QJsonArray a;
    for (std::uint64_t x : v) a.append(double(x));
    return a;
}

QJsonArray toArray(const std::vector<int>& v)
{
    QJsonArray a;
    for (int x : v) a.append(x);
    return a;
}

struct Reader {
    const QJsonObject& o;
    QString error;

    bool fail(const QString& key, const QString& what)
    {
        if (error.isEmpty()) error = QStringLiteral("%1: %2").arg(key, what);
        return false;
    }
    std::uint64_t count(const char* key)
    {
        const QJsonValue v = o.value(QLatin1String(key));
        if (!v.isDouble() || v.toDouble() < 0 || v.toDouble() > 9.0e15) fail(QLatin1String(key), QStringLiteral("expected a count"));
        return v.isDouble() && v.toDouble() >= 0 ? std::uint64_t(v.toDouble()) : 0;
    }
    std::vector<std::uint64_t> counts(const char* key, std::size_t size)
    {
        const QJsonValue v = o.value(QLatin1String(key));
        std::vector<std::uint64_t> out;
        if (!v.isArray() || std::size_t(v.toArray().size()) != size) {
            fail(QLatin1String(key), QStringLiteral("expected %1 counts").arg(size));
            return std::vector<std::uint64_t>(size, 0);
        }
        for (const QJsonValue& x : v.toArray()) {
            if (!x.isDouble() || x.toDouble() < 0) fail(QLatin1String(key), QStringLiteral("expected counts"));
            out.push_back(x.isDouble() && x.toDouble() >= 0 ? std::uint64_t(x.toDouble()) : 0);
        }
        return out;
    }
};

}  // namespace

QByteArray DeviceTraffic::toJson() const
{
    const moelens::ExpertPlacement& p = placement;
    const moelens::ExpertTraffic& t = traffic;
    QJsonObject o{
        {"devices", p.devices},
        {"device_of", toArray(p.device_of)},
        {"device_limited", p.device_limited},
        {"params", toArray(p.params)},
        {"weight_bytes", toArray(p.weight_bytes)},
        {"replicated_params", double(p.replicated_params)},
        {"device_limit", deviceLimit},
        {"memory_bytes", double(memoryBytes)},
        {"home", t.home},
        {"token_layers", double(t.token_layers)},
        {"dispatch_rows", toArray(t.dispatch_rows)},
        {"combine_rows", toArray(t.combine_rows)},
        {"expert_rows", toArray(t.expert_rows)},
        {"touched", toArray(t.touched)},
        {"limit_exceeded", double(t.limit_exceeded)},
        {"row_bytes", double(t.row_bytes)},
    };
    return QJsonDocument(o).toJson(QJsonDocument::Compact);
}

std::optional<DeviceTraffic> DeviceTraffic::fromJson(const QByteArray& json, QString* error)
{
    QJsonParseError parse;
    const QJsonDocument doc = QJsonDocument::fromJson(json, &parse);
    if (!doc.isObject()) {
        if (error) *error = QStringLiteral("not a JSON object (%1)").arg(parse.errorString());
        return std::nullopt;
    }
    const QJsonObject o = doc.object();
    Reader r{o, {}};
    DeviceTraffic d;
    moelens::ExpertPlacement& p = d.placement;
    const int D = o.value("devices").toInt(0);
    // As many devices as place_experts allows for the largest released model and more.
    if (D < 1 || D > 1024) r.fail("devices", QStringLiteral("expected 1..1024"));
    const QJsonArray of = o.value("device_of").toArray();
    if (of.isEmpty() || of.size() > 65536) r.fail("device_of", QStringLiteral("expected 1..65536 experts"));
    if (!r.error.isEmpty()) {
        if (error) *error = r.error;
        return std::nullopt;
    }
    const std::size_t n = std::size_t(D);
    p.devices = D;
    p.n_experts = int(of.size());
    for (const QJsonValue& v : of) {
        const int dev = v.toInt(-1);
        if (!v.isDouble() || dev < 0 || dev >= D) r.fail("device_of", QStringLiteral("a device outside 0..%1").arg(D - 1));
        p.device_of.push_back(std::clamp(dev, 0, D - 1));
    }
    p.device_limited = o.value("device_limited").toBool();
    p.params = r.counts("params", n);
    p.weight_bytes = r.counts("weight_bytes", n);
    p.replicated_params = r.count("replicated_params");
    d.deviceLimit = std::max(0, o.value("device_limit").toInt());
    d.memoryBytes = r.count("memory_bytes");
    moelens::ExpertTraffic& t = d.traffic;
    t.devices = D;
    t.home = o.value("home").toInt(-1);
    if (t.home < 0 || t.home >= D) r.fail("home", QStringLiteral("a device outside 0..%1").arg(D - 1));
    t.token_layers = r.count("token_layers");
    t.dispatch_rows = r.counts("dispatch_rows", n * n);
    t.combine_rows = r.counts("combine_rows", n * n);
    t.expert_rows = r.counts("expert_rows", n);
    t.touched = r.counts("touched", n + 1);
    t.limit_exceeded = r.count("limit_exceeded");
    t.row_bytes = r.count("row_bytes");
    if (!r.error.isEmpty()) {
        if (error) *error = r.error;
        return std::nullopt;
    }
    return d;
}
