#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/) from the
real files in the tree, so every run starts from inputs that reach deep into
each parser. Deterministic: rerun after a format change and commit the result.
Usage: tests/fuzz/make_seeds.py (from anywhere)."""
import base64, json, os, struct, zlib
from pathlib import Path

root = Path(__file__).resolve().parents[2]
out = root / "tests/fuzz/corpus"
fixtures = root / "tests/fixtures"


def put(target, name, data):
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors, metadata=None):
    header, blob = {}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


# safetensors: small files of every dtype the engine reads.
put("safetensors", "f32", safetensors([("a", "F32", [2, 3], struct.pack("<6f", *range(6)))]))
put("safetensors", "bf16_i32_meta", safetensors([("w", "BF16", [4], b"\x80\x3f" * 4), ("i", "I32", [2], struct.pack("<2i", 7, -1))],
                                                  {"format": "pt"}))
put("safetensors", "f16_f64_i64_u8", safetensors([("h", "F16", [1, 2], b"\x00\x3c\x00\xc0"), ("d", "F64", [1], struct.pack("<d", 2.5)),
                                                   ("l", "I64", [1], struct.pack("<q", 3)), ("u", "U8", [3], b"\x01\x02\x03")]))
put("safetensors", "empty_tensor", safetensors([("z", "F32", [0, 4], b"")]))

# The index of a sharded checkpoint: the lite golden's tensors in the one shard
# the target provides, plus names that must be refused.
names = sorted(json.loads((fixtures / "golden/lite/model.safetensors").read_bytes()[8:8 + struct.unpack(
    "<Q", (fixtures / "golden/lite/model.safetensors").read_bytes()[:8])[0]]).keys() - {"__metadata__"})
shard = "model-00001-of-00002.safetensors"
put("checkpoint_index", "valid", json.dumps({"metadata": {"total_size": 1}, "weight_map": {n: shard for n in names}}, indent=1))
put("checkpoint_index", "missing_shard", json.dumps({"weight_map": {names[0]: "model-00002-of-00002.safetensors"}}))
put("checkpoint_index", "outside", json.dumps({"weight_map": {names[0]: "../" + shard}}))

# config.json: every golden's and the demo model's.
for v in ("lite", "v2", "v2-f32"):
    put("config", v, (fixtures / "golden" / v / "config.json").read_text())
put("config", "builtin", (root / "resources/demo-model/config.json").read_text())

# tokenizer.json: the real one cut down to its first 600 pieces and the merges
# among them (the real file, 7.8 MB, is too large to mutate usefully).
tok = json.loads((root / "resources/tokenizer/tokenizer.json").read_text())
vocab = {p: i for p, i in tok["model"]["vocab"].items() if i < 600}
merges = [m for m in tok["model"]["merges"] if all(part in vocab for part in m.split(" ")) and m.replace(" ", "") in vocab]
small = dict(tok)
small["model"] = dict(tok["model"], vocab=vocab, merges=merges)
small["added_tokens"] = [t for t in tok["added_tokens"] if t["id"] < 3]
put("tokenizer_load", "deepseek_600", json.dumps(small, ensure_ascii=False))
plain = dict(small, pre_tokenizer={"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True})
put("tokenizer_load", "bytelevel_only", json.dumps(plain, ensure_ascii=False))
put("tokenizer_load", "builtin_4096", (root / "resources/demo-model/tokenizer.json").read_text())

# Texts for the real tokenizer: the encode goldens' inputs.
for i, line in enumerate((fixtures / "tokenizer/encode_golden.jsonl").read_text().splitlines()[:24]):
    put("tokenizer_encode", f"golden_{i:02d}", json.loads(line)["text"])
put("tokenizer_encode", "invalid_utf8", b"ab\xff\xfe\xc3(\xe2\x82 \xf0\x9f\x98")

# Chat templates: the real one with the chat goldens' conversations.
tpl = json.loads((root / "resources/tokenizer/tokenizer_config.json").read_text())["chat_template"]
chats = json.loads((fixtures / "tokenizer/chat_golden.json").read_text())
for i, case in enumerate(chats[:8]):
    put("chat_template", f"deepseek_{i}", tpl + "\n----\n" + json.dumps(case["messages"], ensure_ascii=False))
put("chat_template", "features", "{% set n = 0 %}{% for m in messages %}{% if loop.first %}[{{ m.role | upper }}]{% endif %}"
    "{{ m['content'] ~ '|' }}{% endfor %}{{ messages | length }}{% macro f(x) %}{{ x * 2 }}{% endmacro %}{{ f(3) }}"
    "{{ 'a' if n == 0 else 'b' }}{{ range(3) | join(',') }}\n----\n" + json.dumps([{"role": "user", "content": "hi"}]))


def trace(n_experts, top_k, layers, tokens, prompt, texts=None, groups=0):
    flags = 1 if texts else 0
    width = 1 if n_experts <= 256 else 2
    b = b"MLTR" + struct.pack("<HHHBBBBH", 1, flags, n_experts, top_k, groups, width, 1, 0)
    b += struct.pack("<III", len(layers), len(tokens), prompt)
    b += struct.pack(f"<{len(layers)}H", *layers) + struct.pack(f"<{len(tokens)}i", *tokens)
    for t in texts or []:
        raw = t.encode()
        b += bytes([len(raw)]) + raw
    rows = len(tokens) * len(layers) * top_k
    b += bytes((i * 7) % n_experts for i in range(rows)) if width == 1 else struct.pack(f"<{rows}H", *((i * 7) % n_experts for i in range(rows)))
    b += struct.pack(f"<{rows}e", *(0.25 for _ in range(rows)))
    b += bytes(i % 4 for i in range(len(tokens) * len(layers) * groups))
    return b + struct.pack("<I", zlib.crc32(b))


t1 = trace(16, 4, [1, 2, 3], [0, 5, 6, 7], 2, ["<s>", "a", "b", " c"], groups=2)
t2 = trace(300, 6, [1], [9, 10], 0)
put("trace_codec", "texts_groups", t1)
put("trace_codec", "wide_ids", t2)

# A chat export with branches, runs and a trace.
run = {"model_path": "/m", "model_fingerprint": "fp", "sampling": {"temperature": 0.7}, "tokens_in": 4, "tokens_out": 2,
       "prefill_tokens_per_s": 10.0, "decode_tokens_per_s": 5.0, "stop_reason": "eos", "error": "", "started_ms": 1,
       "finished_ms": 2, "trace": base64.b64encode(t1).decode()}
msgs = [{"id": 1, "parent": None, "role": "user", "content": "hello", "state": "complete", "created_ms": 1, "runs": []},
        {"id": 2, "parent": 1, "role": "assistant", "content": "hi!", "state": "complete", "created_ms": 2, "runs": [run]},
        {"id": 3, "parent": 1, "role": "assistant", "content": "par", "state": "streaming", "created_ms": 3, "runs": []}]
chat = {"title": "T", "model": "M", "system_prompt": "", "pinned": False, "archived": False, "created_ms": 1, "updated_ms": 3,
        "current_leaf": 2, "messages": msgs}
put("chat_import", "branches_trace", json.dumps({"format": "moelens-chats", "version": 1, "chats": [chat]}, indent=1))
put("chat_import", "two_chats", json.dumps({"format": "moelens-chats", "version": 1, "chats": [chat, dict(chat, title="U", current_leaf=None)]}))

# generate: byte strings the target reads as options, prompts and settings
# (tests/fuzz/fuzz_generate.cpp's order); one plain request, then two with MoE knobs.
def request(tokens, temp, top_k, top_p, min_p, rep, seed, max_new, moe=b""):
    return bytes([len(tokens)]) + struct.pack(f"<{len(tokens)}I", *tokens) + bytes([temp, top_k, top_p, min_p, rep]) + \
        struct.pack("<I", seed) + bytes([max_new, 0]) + moe


put("generate", "plain", bytes([8, 0, 1, 0]) + request([1, 300, 301], 0, 40, 190, 0, 64, 4, 5, bytes([0])))
put("generate", "moe_knobs", bytes([4, 0, 1, 1]) +
    request([9, 17, 40], 51, 20, 180, 10, 70, 1, 5, bytes([5, 4, 2, 2, 6, 3, 1])) +  # K = 3, experts 5 (layer 1) and 0 (layer 2) off
    request([9, 17, 40], 0, 0, 200, 0, 64, 42, 4, bytes([1, 3])))                      # K = 2, greedy
print("seeds written to", out)
