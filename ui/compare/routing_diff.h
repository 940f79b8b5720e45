#pragma once
// "How the routing differs" between a comparison's columns, from their traces
// (what docs/ui.md explains): per MoE layer the Jaccard overlap of the expert sets
// two columns used over their generated tokens, the experts only one column used,
// each column's drift from a column with the model's own routing, and where the
// tokens of columns with equal sampling but other MoE settings first diverge.
// Pure functions of the traces; the UI thread computes them after each column ends.
#include <optional>
#include <vector>

#include "trace/answer_trace.h"

struct DiffColumn {
    const AnswerTrace* trace = nullptr;  // null: the column has not run (it is left out)
    bool defaultMoe = false;             // the model's own routing
    bool sameSamplingAs(const DiffColumn& o) const { return samplingKey == o.samplingKey; }
    QString samplingKey;                 // equal keys = equal sampling settings and seed
    QString moeKey;                      // equal keys = equal MoE settings
};

struct RoutingDiff {
    std::vector<int> layers;  // the MoE layers, as in the traces
    struct Pair {
        int a = 0, b = 0;
        std::vector<double> jaccard;  // [layer]: |Ea ∩ Eb| / |Ea ∪ Eb|, 1 when both are empty
        double mean = 0;              // over the layers
    };
    std::vector<Pair> pairs;
    std::vector<std::vector<std::vector<int>>> onlyHere;  // [column][layer]: experts no other column used
    int defaultColumn = -1;                               // the first column with the model's routing that ran
    struct Drift {
        int positions = 0;            // prompt rows + common generated prefix compared
        std::vector<double> changed;  // [layer]: share of those positions whose expert set differs
        double mean = 0;              // over the layers
    };
    std::vector<std::optional<Drift>> drift;  // [column]; none without a default column or for it itself
    struct Divergence {
        int a = 0, b = 0;
        std::optional<int> position;  // first generated position whose tokens differ
        int compared = 0;             // generated positions both have
    };
    std::vector<Divergence> divergences;
};

RoutingDiff diffRouting(const std::vector<DiffColumn>& columns);
