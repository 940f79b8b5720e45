"""Trains the demo model: AdamW, warm-up then cosine decay, BF16 autocast, fixed steps
(so a rerun on another machine does the same work), a short phase at the full context
length at the end. Writes a checkpoint, the training log (CSV) and the final
validation perplexity measured with the procedure `moelens-cli perplexity` uses.
"""
import argparse
import csv
import json
import math
import pathlib
import time

import numpy as np
import torch
import torch.nn.functional as F

import bpe
import data
import model


def evaluate(net, windows):
    """Mean negative log-likelihood over every predicted token of the windows (f32)."""
    net.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for w in windows:
            x = torch.tensor(w, dtype=torch.long)[None]
            logits, _, _ = net(x[:, :-1])
            total += F.cross_entropy(logits[0], x[0, 1:], reduction="sum").item()
            count += x.shape[1] - 1
    net.train()
    return total / count


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--corpus", required=True)
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=1100, help="steps at the short length")
    p.add_argument("--long-steps", type=int, default=250, help="final steps at the full context")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--short-len", type=int, default=256)
    p.add_argument("--lr", type=float, default=2.5e-3)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--eval-every", type=int, default=100)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    cfg = model.Config()
    enc = bpe.load(a.tokenizer)
    t0 = time.time()
    stream = data.training_stream(a.corpus, enc, a.seed)
    val_text = (pathlib.Path(a.corpus) / "val.txt").read_text()
    val_full = data.validation_windows(val_text, enc, cfg.max_position_embeddings)
    val_quick = val_full[::8]
    print(f"train: {len(stream)} training tokens, {sum(len(w) - 1 for w in val_full)} validation tokens "
          f"({time.time() - t0:.0f} s to tokenize)", flush=True)

    net = model.DeepseekV2(cfg)
    decay = [p for n, p in net.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in net.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    rng = np.random.default_rng(a.seed)
    total_steps = a.steps + a.long_steps
    warmup = 100
    log = open(out / "train_log.csv", "w", newline="")
    writer = csv.writer(log)
    writer.writerow(["step", "elapsed_s", "tokens", "train_loss", "balance", "val_loss", "lr"])
    tokens_seen, start, recent = 0, time.time(), []
    for step in range(1, total_steps + 1):
        long_phase = step > a.steps
        length = cfg.max_position_embeddings if long_phase else a.short_len
        batch = a.batch * a.short_len // length  # same tokens per step in both phases
        lr = a.lr * (step / warmup if step < warmup else
                     0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total_steps - warmup))))
        for g in opt.param_groups:
            g["lr"] = lr
        starts = rng.integers(0, len(stream) - length - 1, size=batch)
        x = torch.from_numpy(np.stack([stream[s:s + length + 1] for s in starts]).astype(np.int64))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits, balance, _ = net(x[:, :-1])
            lm = F.cross_entropy(logits.reshape(-1, cfg.vocab_size), x[:, 1:].reshape(-1))
            loss = lm + cfg.aux_loss_alpha * balance
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        tokens_seen += x[:, 1:].numel()
        recent.append(lm.item())
        val = ""
        if step % a.eval_every == 0 or step == total_steps:
            val = evaluate(net, val_quick)
            torch.save({"model": net.state_dict(), "step": step, "config": cfg.__dict__}, out / "checkpoint.pt")
        if step % 10 == 0 or val != "":
            elapsed = time.time() - start
            writer.writerow([step, round(elapsed, 1), tokens_seen, round(float(np.mean(recent)), 4),
                             round(balance.item(), 4), round(val, 4) if val != "" else "", f"{lr:.3g}"])
            log.flush()
            print(f"step {step}/{total_steps} {elapsed / 60:.1f} min loss {np.mean(recent):.3f} "
                  f"balance {balance.item():.3f}" + (f" val {val:.3f} (ppl {math.exp(val):.1f})" if val != "" else ""),
                  flush=True)
            recent = []
    nll = evaluate(net, val_full)
    result = {"steps": total_steps, "tokens": tokens_seen, "minutes": round((time.time() - start) / 60, 1),
              "validation_tokens": sum(len(w) - 1 for w in val_full), "validation_nll": nll,
              "validation_perplexity": math.exp(nll), "window": cfg.max_position_embeddings,
              "note": "f32 evaluation of the trained (not yet BF16-rounded) weights"}
    (out / "train_result.json").write_text(json.dumps(result, indent=1) + "\n")
    print("train:", result, flush=True)


if __name__ == "__main__":
    main()
