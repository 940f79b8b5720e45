#pragma once
// Where an answer's experts lived and what moving its rows to them cost: the
// engine's placement (moelens/expert_parallel.h) and the answer's own traffic
// (the prompt it read and the tokens it generated), as the Devices panel draws
// them live and as a run stores them (RunRecord::devices_json, this JSON).
#include <QByteArray>
#include <QMetaType>
#include <QString>

#include <cstdint>
#include <optional>

#include "moelens/expert_parallel.h"

struct DeviceTraffic {
    moelens::ExpertPlacement placement;
    moelens::ExpertTraffic traffic;  // this answer's; traffic.home is its sequence's device
    int deviceLimit = 0;             // M the answer was routed with (0: the model routes greedily)
    std::uint64_t memoryBytes = 0;   // memory per device it ran under; 0 = no limit

    QByteArray toJson() const;
    // Reads what toJson wrote; a stored value that does not fit together (sizes,
    // device ids out of range) is refused with `error` naming the field.
    static std::optional<DeviceTraffic> fromJson(const QByteArray& json, QString* error = nullptr);
};
Q_DECLARE_METATYPE(DeviceTraffic)
