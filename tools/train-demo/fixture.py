"""Writes the CTest fixture that ties the engine to this PyTorch model
(tests/fixtures/demo-model): for a validation prompt, the logits, a greedy
continuation and every MoE layer's routing in the layout of the reference goldens
(tests/fixtures/golden/README.md), computed in f32 from the exported BF16 weights;
a validation excerpt with its mean NLL under the perplexity procedure; and
tokenizer ids for a few texts, so the engine's tokenizer is checked against this
one as well."""
import argparse
import json
import math
import pathlib

import torch
import torch.nn.functional as F

import bpe
import data
import export
import model
import safetensors_io
import train as training

PROMPT_TOKENS = 40
GREEDY_TOKENS = 8
EXCERPT_CHARS = 3000
TOKENIZER_SAMPLES = [
    "def greet(name):\n    return f\"Hello, {name}!\"\n",
    "The  quick brown fox — naïve café, 12345 items; x[0] += 1.\n\n\tIndented\r\n",
    bpe.render_chat("What is a list?", "A list is a mutable sequence."),
]


def routing(net, tokens):
    """Top-k ids (ascending) and their weights per MoE layer for the prompt."""
    _, _, ids = net(tokens[None])
    out = {}
    # The model returns ids only; walk the layers again for the gate weights.
    h = net.model.embed_tokens(tokens[None])
    t = tokens.shape[0]
    mask = torch.full((t, t), float("-inf")).triu(1)
    cos, sin = net.rope_cos[:t], net.rope_sin[:t]
    for i, layer in enumerate(net.model.layers):
        if layer.is_moe:
            normed = layer.post_attention_layernorm(h + layer.self_attn(layer.input_layernorm(h), cos, sin, mask))
            scores = torch.softmax(normed[0].float() @ layer.mlp.gate.weight.float().t(), dim=-1)
            w, e = torch.topk(scores, net.cfg.num_experts_per_tok, dim=-1)
            order = torch.argsort(e, dim=-1)
            out[i] = (torch.gather(e, 1, order), torch.gather(w, 1, order))
            assert torch.equal(out[i][0], torch.sort(ids[i][0], dim=-1).values)
        h, _, _ = layer(h, cos, sin, mask)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True, help="exported model folder")
    p.add_argument("--train", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    torch.set_num_threads(2)
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    net = export.rounded_model(pathlib.Path(a.train) / "checkpoint.pt")
    enc = bpe.load(a.model)
    val_text = (pathlib.Path(a.corpus) / "val.txt").read_text()

    with torch.no_grad():
        prompt = torch.tensor([enc.vocab[bpe.BOS]] + enc.encode(val_text)[:PROMPT_TOKENS - 1])
        logits, _, _ = net(prompt[None])
        seq, greedy, greedy_logits = prompt.tolist(), [], []
        next_token = int(logits[0, -1].argmax())
        for _ in range(GREEDY_TOKENS):
            greedy.append(next_token)
            seq.append(next_token)
            step_logits = net(torch.tensor(seq)[None])[0][0, -1]
            greedy_logits.append(step_logits)
            next_token = int(step_logits.argmax())
        tensors = {"tokens": prompt.to(torch.int32), "logits": logits[0].float(),
                   "greedy_tokens": torch.tensor(greedy, dtype=torch.int32),
                   "greedy_logits": torch.stack(greedy_logits).float()}
        for layer, (ids, weights) in routing(net, prompt).items():
            tensors[f"topk_idx.{layer}"] = ids.to(torch.int32)
            tensors[f"topk_weight.{layer}"] = weights.float()
        safetensors_io.save(tensors, out / "golden.safetensors", {"producer": "tools/train-demo/fixture.py"})

        cut = val_text.rfind("\n", 0, EXCERPT_CHARS) + 1
        excerpt = val_text[:cut]
        (out / "val_excerpt.txt").write_text(excerpt)
        windows = data.validation_windows(excerpt, enc, model.Config().max_position_embeddings)
        nll = training.evaluate(net, windows)
    expected = {"text": "val_excerpt.txt", "window": model.Config().max_position_embeddings,
                "tokens": sum(len(w) - 1 for w in windows), "windows": len(windows), "mean_nll": nll,
                "perplexity": math.exp(nll)}
    (out / "perplexity.json").write_text(json.dumps(expected, indent=1) + "\n")
    with open(out / "tokenizer.jsonl", "w") as f:
        for text in TOKENIZER_SAMPLES + [excerpt]:
            f.write(json.dumps({"text": text, "ids": enc.encode(text)}, ensure_ascii=False) + "\n")
    print(f"fixture: {out}: {PROMPT_TOKENS} prompt tokens, {GREEDY_TOKENS} greedy, excerpt NLL {nll:.4f} "
          f"over {expected['tokens']} tokens")


if __name__ == "__main__":
    main()
