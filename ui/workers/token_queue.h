#pragma once
// The hand-over point between the engine thread and the UI: the engine's event
// sink appends here (one short lock per token), and the UI takes everything that
// piled up on a display-rate timer, so a fast model cannot flood the event loop
// with one queued call per token (qBittorrent's readAlerts pattern).
#include <QMutex>

#include <functional>

#include "trace/answer_trace.h"

class TokenQueue {
public:
    void push(TokenRow row)
    {
        if (m_tap) m_tap(row);
        QMutexLocker lock(&m_mutex);
        m_rows.push_back(std::move(row));
    }
    // Sees every row as the engine hands it over, on the engine thread and outside
    // the lock (so a tap may hold the engine without freezing the UI's drain): lets
    // tests compare what the views show with what the engine reported. Set it
    // before the engine produces tokens.
    void setTap(std::function<void(const TokenRow&)> tap) { m_tap = std::move(tap); }
    TokenRows takeAll()
    {
        QMutexLocker lock(&m_mutex);
        TokenRows out;
        out.swap(m_rows);
        return out;
    }

private:
    QMutex m_mutex;
    TokenRows m_rows;
    std::function<void(const TokenRow&)> m_tap;
};
