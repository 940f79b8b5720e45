#include "dialogs/model_check_dialog.h"

#include <QDialogButtonBox>
#include <QLabel>
#include <QPushButton>
#include <QVBoxLayout>

#include "moelens/devices.h"
#include "viz/viz_common.h"

namespace {

QString billions(std::uint64_t n)
{
    if (n >= 1000000000ull) return QObject::tr("%1 B").arg(double(n) / 1e9, 0, 'f', 2);
    return QObject::tr("%1 M").arg(double(n) / 1e6, 0, 'f', 1);
}

}  // namespace

QString ModelCheckDialog::reportHtml(const moelens::ModelInfo& info, int contextTokens)
{
    const moelens::DeviceReport& devices = moelens::probe_devices();
    const double cacheBytes = double(info.latent_cache_bytes_per_token) * contextTokens;
    const QString device = devices.cuda_usable ? QObject::tr("GPU: %1").arg(QString::fromStdString(devices.gpus.front().name))
                                               : QObject::tr("CPU, %1 threads (%2)")
                                                     .arg(devices.cpu_threads)
                                                     .arg(QString::fromStdString(devices.reason).toHtmlEscaped());
    QString moe = QObject::tr("%1 routed + %2 shared experts, top-%3; %4 of %5 layers use MoE")
                      .arg(info.n_routed_experts)
                      .arg(info.n_shared_experts)
                      .arg(info.top_k)
                      .arg(info.moe_layers.size())
                      .arg(info.num_layers);
    if (info.n_group > 1)
        moe += QObject::tr("; %1 expert groups, at most %2 per token (%3)")
                   .arg(info.n_group)
                   .arg(info.topk_group)
                   .arg(QString::fromStdString(info.topk_method));
    QString html = QStringLiteral("<table cellspacing=4>");
    const auto row = [&](const QString& k, const QString& v) { html += QStringLiteral("<tr><td><b>%1</b></td><td>%2</td></tr>").arg(k, v); };
    row(QObject::tr("Folder"), QString::fromStdString(info.dir.string()).toHtmlEscaped());
    row(QObject::tr("Architecture"), QString::fromStdString(info.architecture).toHtmlEscaped() +
                                         (info.is_demo ? QObject::tr(" — demo model (random weights)") : QString()));
    row(QObject::tr("Parameters"), QObject::tr("%1 total, %2 active per token").arg(billions(info.total_params), billions(info.active_params_per_token)));
    row(QObject::tr("Experts"), moe);
    row(QObject::tr("Weights"), QObject::tr("%1, %2 on disk in %n file(s)", nullptr, int(info.weight_files.size()))
                                    .arg(QString::fromStdString(info.weights_dtype), formatBytes(double(info.bytes_on_disk))));
    row(QObject::tr("Memory needed"), QObject::tr("%1 of weights + %2 latent cache for %3 tokens")
                                          .arg(formatBytes(double(info.bytes_on_disk)), formatBytes(cacheBytes))
                                          .arg(contextTokens));
    if (info.resident_bytes > 0)  // set once loaded (moelens::WeightsMemory)
        row(QObject::tr("In memory"), QObject::tr("%1 of weights copied into large pages at load, for fast decoding")
                                          .arg(formatBytes(double(info.resident_bytes))));
    row(QObject::tr("Latent cache"), QObject::tr("%1 per token (a plain multi-head cache: %2)")
                                         .arg(formatBytes(double(info.latent_cache_bytes_per_token)),
                                              formatBytes(double(info.mha_cache_bytes_per_token))));
    row(QObject::tr("Runs on"), device);
    html += QStringLiteral("</table>");
    return html;
}

ModelCheckDialog::ModelCheckDialog(const moelens::ModelInfo& info, int contextTokens, QWidget* parent) : QDialog(parent)
{
    setWindowTitle(tr("Model check"));
    setMinimumWidth(520);
    auto* layout = new QVBoxLayout(this);
    auto* ok = new QLabel(tr("<p>The folder passed every check (config.json and every tensor header). "
                             "Load it?</p>"), this);
    auto* report = new QLabel(reportHtml(info, contextTokens), this);
    report->setObjectName(QStringLiteral("modelReport"));
    report->setTextInteractionFlags(Qt::TextSelectableByMouse);
    report->setWordWrap(true);
    layout->addWidget(ok);
    layout->addWidget(report);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Cancel, this);
    buttons->addButton(tr("Load"), QDialogButtonBox::AcceptRole)->setDefault(true);
    layout->addWidget(buttons);
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
}
