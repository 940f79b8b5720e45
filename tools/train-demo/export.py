"""Exports the trained checkpoint in the Hugging Face DeepSeek-V2 layout (config.json,
model.safetensors in BF16, generation_config.json, the tokenizer files) plus the
model card, provenance and licence notes, then re-scores the validation text with
the BF16-rounded weights (what the engine will load) for the model card."""
import argparse
import json
import math
import pathlib
import shutil

import torch

import bpe
import data
import model
import safetensors_io
import train as training

# The documentation's own licence page: the PSF licence and the Zero-Clause BSD licence
# for its code examples, in full.
CORPUS_LICENCE = pathlib.Path("/usr/share/doc/python3.11/html/_sources/license.rst.txt")


def rounded_model(checkpoint):
    """The trained model with every weight rounded to BF16 and widened back to f32."""
    state = torch.load(checkpoint)["model"]
    net = model.DeepseekV2(model.Config())
    net.load_state_dict({k: v.to(torch.bfloat16).float() for k, v in state.items()})
    net.eval()
    return net


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--train", required=True, help="training output folder (checkpoint.pt, train_result.json)")
    p.add_argument("--corpus", required=True)
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    torch.set_num_threads(2)
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = model.Config()
    net = rounded_model(pathlib.Path(a.train) / "checkpoint.pt")
    tensors = {name: t.to(torch.bfloat16) for name, t in net.state_dict().items()}
    safetensors_io.save(tensors, out / "model.safetensors", {"format": "pt", "producer": "tools/train-demo"})
    (out / "config.json").write_text(json.dumps(cfg.hf_config(), indent=2) + "\n")
    (out / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": cfg.bos_token_id, "eos_token_id": cfg.eos_token_id, "do_sample": True,
         "temperature": 0.7, "top_p": 0.9}, indent=2) + "\n")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(pathlib.Path(a.tokenizer) / name, out / name)
    shutil.copy(CORPUS_LICENCE, out / "LICENSE-corpus.txt")

    enc = bpe.load(a.tokenizer)
    val_text = (pathlib.Path(a.corpus) / "val.txt").read_text()
    nll = training.evaluate(net, data.validation_windows(val_text, enc, cfg.max_position_embeddings))
    trained = json.loads((pathlib.Path(a.train) / "train_result.json").read_text())
    stats = json.loads((pathlib.Path(a.corpus) / "corpus_stats.json").read_text())
    result = {"validation_nll_bf16": nll, "validation_perplexity_bf16": math.exp(nll), **trained, "corpus": stats,
              "parameters": sum(t.numel() for t in tensors.values())}
    (out / "training.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "README.md").write_text(MODEL_CARD.format(
        params=result["parameters"] / 1e6, ppl=math.exp(nll), steps=trained["steps"],
        tokens=trained["tokens"] / 1e6, minutes=trained["minutes"], **stats))
    print(f"export: {out} ({result['parameters'] / 1e6:.2f} M parameters), validation perplexity with BF16 weights "
          f"{math.exp(nll):.2f} (f32 weights {trained['validation_perplexity']:.2f})")


MODEL_CARD = """# MoE Lens demo model

A {params:.1f} M-parameter DeepSeek-V2 model (MLA + DeepSeekMoE: 6 layers, hidden 256,
4 heads, kv_lora_rank 64, one dense layer then 5 MoE layers of 2 shared + 16 routed
experts, top-2) trained from scratch by `tools/train-demo` in the MoE Lens source tree.
It writes Python-documentation-flavoured English and code; it knows nothing else and
makes things up. It exists so that the app's first screen shows readable text and
experts that have specialised.

- Training: {steps} steps, {tokens:.1f} M tokens, {minutes} minutes on a 2-core CPU.
- Validation perplexity (BF16 weights, windows of 512 tokens): {ppl:.2f}.
- Tokenizer: byte-level BPE of 4,096 tokens trained on the same corpus.

## Training data, provenance and licence

The reStructuredText sources of the Python 3.11 documentation as shipped by Debian's
`python3.11-doc` package (`/usr/share/doc/python3.11/html/_sources`), lightly cleaned
(Sphinx roles reduced to their text, labels, index entries and comments removed, host
names replaced by example.org), {files} files cut into blocks of about 2,000
characters: {chars_train} characters for training, {validation_blocks} blocks
({chars_val} characters) held out for validation, plus {chat_examples} question/answer
pairs made from section headings and their first paragraph. The documentation is licensed under
the Python Software Foundation License Version 2; its code examples are under the
Zero-Clause BSD licence. `LICENSE-corpus.txt` is the documentation's own licence page
(`license.rst`), with both licences in full. The weights are a product of that text; they are
distributed under the same terms as MoE Lens (MIT) with this notice.
"""

if __name__ == "__main__":
    main()
