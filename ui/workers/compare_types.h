#pragma once
// Value types of a comparison run (the compare view) between the UI thread and the
// EngineWorker: the request (one prompt, one settings set per column), the token
// rows each column streams (tagged by column) and each column's result.
#include <QMetaType>
#include <QMutex>
#include <QString>

#include <vector>

#include "moelens/moe_settings.h"
#include "moelens/sampling.h"
#include "trace/answer_trace.h"
#include "workers/engine_types.h"

// Columns a comparison can have; the engine worker keeps one stop flag for each.
inline constexpr int kMaxCompareColumns = 8;

struct CompareColumnRequest {
    moelens::SamplingParams sampling;  // seed chosen by the UI: a column's run is reproducible
    moelens::MoeSettings moe;
};

struct CompareRequest {
    quint64 id = 0;   // chosen by the UI, echoed in every answer
    ChatTurns turns;  // the conversation to answer, ending with a user turn
    std::vector<CompareColumnRequest> columns;
};

struct CompareColumnResult {
    quint64 id = 0;
    int column = 0;
    QString text;
    // Every prompt row (the reused ones copied from the column they were shared
    // with, whose routing is the same: equal MoE settings) then the generated rows.
    TokenRows rows;
    int generatedTokens = 0;
    double decodeSeconds = 0;
    QString stopReason;  // stop_reason_name(), or "error"
    QString error;       // empty unless the column failed (e.g. MoE settings the model cannot take)
    // With virtual devices: the rows this column computed (a prompt shared with an
    // earlier column of the same MoE settings is counted there).
    std::optional<DeviceTraffic> devices;
};

struct CompareRow {
    int column = 0;
    TokenRow row;
};
using CompareRows = std::vector<CompareRow>;

// The engine appends each column's rows; the UI takes them at display rate (as TokenQueue).
class CompareQueue {
public:
    void push(CompareRow row)
    {
        QMutexLocker lock(&m_mutex);
        m_rows.push_back(std::move(row));
    }
    CompareRows takeAll()
    {
        QMutexLocker lock(&m_mutex);
        CompareRows out;
        out.swap(m_rows);
        return out;
    }

private:
    QMutex m_mutex;
    CompareRows m_rows;
};

Q_DECLARE_METATYPE(CompareRequest)
Q_DECLARE_METATYPE(CompareColumnResult)
