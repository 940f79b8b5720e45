"""The expert-specialisation table of docs/demo-model.md: routes the validation text
through the exported model and, for each MoE layer, reports the load balance and,
for a few experts, the tokens that go to them most often relative to how often
those tokens occur (so an expert's own tokens show, not just "the" and ",")."""
import argparse
import collections
import json
import math
import pathlib

import torch

import bpe
import data
import export
import model


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--out", required=True, help="markdown file")
    p.add_argument("--experts-per-layer", type=int, default=4)
    a = p.parse_args()
    torch.set_num_threads(2)
    cfg = model.Config()
    net = export.rounded_model(pathlib.Path(a.train) / "checkpoint.pt")
    enc = bpe.load(a.model)
    inverse = {i: s for s, i in enc.vocab.items()}
    windows = data.validation_windows((pathlib.Path(a.corpus) / "val.txt").read_text(), enc,
                                      cfg.max_position_embeddings)
    token_count = collections.Counter()
    routed = collections.defaultdict(collections.Counter)  # (layer, expert) -> token counts
    load = collections.defaultdict(lambda: [0] * cfg.n_routed_experts)
    with torch.no_grad():
        for w in windows:
            x = torch.tensor(w)[None]
            _, _, ids = net(x)
            for t, tok in enumerate(w):
                token_count[tok] += 1
                for layer, layer_ids in ids.items():
                    for e in layer_ids[0, t].tolist():
                        routed[(layer, e)][tok] += 1
                        load[layer][e] += 1

    def show(tok):
        text = enc.decode([tok]).replace("\n", "\\n").replace("\t", "\\t").replace("|", "\\|")
        fence = "``" if "`" in text else "`"
        pad = " " if text.startswith("`") or text.endswith("`") else ""
        shown = f"{fence}{pad}{text}{pad}{fence}"
        return shown if text.strip() else f"{shown} (space)"

    lines = ["| layer | load max/mean | load CV | expert | share of tokens | most characteristic tokens (share of their occurrences routed here) |",
             "|---|---|---|---|---|---|"]
    summary = {}
    for layer in sorted(load):
        counts = load[layer]
        mean = sum(counts) / len(counts)
        cv = math.sqrt(sum((c - mean) ** 2 for c in counts) / len(counts)) / mean
        summary[layer] = {"max_over_mean": max(counts) / mean, "cv": cv, "load": counts}
        total_tokens = sum(counts) / cfg.num_experts_per_tok
        # Experts with the most concentrated token sets: highest mean "purity" of their top tokens.
        ranked = []
        for e in range(cfg.n_routed_experts):
            scored = [(n / token_count[tok], n, tok) for tok, n in routed[(layer, e)].items() if token_count[tok] >= 20]
            scored.sort(reverse=True)
            top = scored[:6]
            purity = sum(s for s, _, _ in top) / max(1, len(top))
            ranked.append((purity, e, top))
        ranked.sort(reverse=True)
        for purity, e, top in ranked[:a.experts_per_layer]:
            tokens = ", ".join(f"{show(tok)} ({share:.0%})" for share, _, tok in top)
            lines.append(f"| {layer} | {max(counts) / mean:.2f} | {cv:.2f} | {e} | {counts[e] / total_tokens:.1%} | {tokens} |")
    pathlib.Path(a.out).write_text("\n".join(lines) + "\n")
    pathlib.Path(a.out).with_suffix(".json").write_text(json.dumps(summary, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
