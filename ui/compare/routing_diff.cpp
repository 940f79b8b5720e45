#include "compare/routing_diff.h"

#include <algorithm>
#include <set>

namespace {

using ExpertSet = std::set<int>;

// Experts of one row at MoE layer `layer`, as a set (the order is by weight).
ExpertSet expertsAt(const TokenRow& row, int layer)
{
    for (const moelens::RoutingRecord& r : row.routing)
        if (r.layer == layer) return ExpertSet(r.experts.begin(), r.experts.end());
    return {};
}

// Union over the generated tokens, per layer.
std::vector<ExpertSet> usedExperts(const AnswerTrace& t, const std::vector<int>& layers)
{
    std::vector<ExpertSet> used(layers.size());
    for (const TokenRow& row : t.tokens())
        for (const moelens::RoutingRecord& r : row.routing) {
            const auto it = std::find(layers.begin(), layers.end(), r.layer);
            if (it != layers.end()) used[std::size_t(it - layers.begin())].insert(r.experts.begin(), r.experts.end());
        }
    return used;
}

double jaccard(const ExpertSet& a, const ExpertSet& b)
{
    std::vector<int> both, either;
    std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(both));
    std::set_union(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(either));
    return either.empty() ? 1.0 : double(both.size()) / double(either.size());
}

double mean(const std::vector<double>& v)
{
    double sum = 0;
    for (double x : v) sum += x;
    return v.empty() ? 0.0 : sum / double(v.size());
}

// The rows where column `c` saw exactly the tokens the default column `d` saw: the
// prompt rows both stored, then generated rows while every token so far is equal
// (a row's routing depends on the tokens up to it).
RoutingDiff::Drift driftFrom(const AnswerTrace& c, const AnswerTrace& d, const std::vector<int>& layers)
{
    std::vector<std::pair<const TokenRow*, const TokenRow*>> rows;
    const TokenRows &pc = c.messageTokens(), &pd = d.messageTokens();
    for (std::size_t i = 0; i < pc.size() && i < pd.size() && pc[i].token == pd[i].token; ++i)
        rows.emplace_back(&pc[i], &pd[i]);
    const TokenRows &gc = c.tokens(), &gd = d.tokens();
    for (std::size_t i = 0; i < gc.size() && i < gd.size() && gc[i].token == gd[i].token; ++i)
        rows.emplace_back(&gc[i], &gd[i]);
    RoutingDiff::Drift out;
    out.positions = int(rows.size());
    for (int layer : layers) {
        int changed = 0;
        for (const auto& [x, y] : rows)
            if (expertsAt(*x, layer) != expertsAt(*y, layer)) ++changed;
        out.changed.push_back(rows.empty() ? 0.0 : double(changed) / double(rows.size()));
    }
    out.mean = mean(out.changed);
    return out;
}

}  // namespace

RoutingDiff diffRouting(const std::vector<DiffColumn>& columns)
{
    RoutingDiff out;
    const std::size_t n = columns.size();
    for (const DiffColumn& c : columns)
        if (c.trace) {
            out.layers = c.trace->shape().moeLayers;
            break;
        }
    std::vector<std::vector<ExpertSet>> used(n);
    for (std::size_t c = 0; c < n; ++c)
        if (columns[c].trace) used[c] = usedExperts(*columns[c].trace, out.layers);

    for (std::size_t a = 0; a < n; ++a)
        for (std::size_t b = a + 1; b < n; ++b) {
            if (!columns[a].trace || !columns[b].trace) continue;
            RoutingDiff::Pair p{int(a), int(b), {}, 0};
            for (std::size_t l = 0; l < out.layers.size(); ++l) p.jaccard.push_back(jaccard(used[a][l], used[b][l]));
            p.mean = mean(p.jaccard);
            out.pairs.push_back(std::move(p));
        }

    out.onlyHere.resize(n);
    for (std::size_t c = 0; c < n; ++c) {
        if (!columns[c].trace) continue;
        for (std::size_t l = 0; l < out.layers.size(); ++l) {
            std::vector<int> only;
            for (int e : used[c][l]) {
                bool elsewhere = false;
                for (std::size_t o = 0; o < n && !elsewhere; ++o)
                    elsewhere = o != c && columns[o].trace && used[o][l].count(e);
                if (!elsewhere) only.push_back(e);
            }
            out.onlyHere[c].push_back(std::move(only));
        }
    }

    out.drift.resize(n);
    for (std::size_t c = 0; c < n && out.defaultColumn < 0; ++c)
        if (columns[c].trace && columns[c].defaultMoe) out.defaultColumn = int(c);
    if (out.defaultColumn >= 0)
        for (std::size_t c = 0; c < n; ++c)
            if (columns[c].trace && int(c) != out.defaultColumn)
                out.drift[c] = driftFrom(*columns[c].trace, *columns[std::size_t(out.defaultColumn)].trace, out.layers);

    for (std::size_t a = 0; a < n; ++a)
        for (std::size_t b = a + 1; b < n; ++b) {
            const DiffColumn &x = columns[a], &y = columns[b];
            if (!x.trace || !y.trace || !x.sameSamplingAs(y) || x.moeKey == y.moeKey) continue;
            RoutingDiff::Divergence d{int(a), int(b), std::nullopt, 0};
            const TokenRows &tx = x.trace->tokens(), &ty = y.trace->tokens();
            d.compared = int(std::min(tx.size(), ty.size()));
            for (int i = 0; i < d.compared && !d.position; ++i)
                if (tx[std::size_t(i)].token != ty[std::size_t(i)].token) d.position = i;
            out.divergences.push_back(d);
        }
    return out;
}
