"""Byte-level BPE for the demo model: training, encoding, and writing the result as a
Hugging Face tokenizer.json + tokenizer_config.json that MoE Lens's own tokenizer
loads like any other.

Encoding follows the Hugging Face semantics (pre-tokenizer split, bytes mapped to
printable characters, then repeatedly merge the adjacent pair with the lowest merge
rank), so the ids used in training are the ids the app's tokenizer produces; the
export checks compare the two on the validation text.
"""
import collections
import heapq
import json
import pathlib
import sys

import regex

BOS, EOS, USER, ASSISTANT = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"
SPECIALS = [BOS, EOS, USER, ASSISTANT]
# Words with their leading space or punctuation, digits in threes, punctuation runs,
# newlines, and indentation kept whole (the corpus is half code).
SPLIT_PATTERN = (r"[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}{1,3}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SPLIT = regex.compile(SPLIT_PATTERN)
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ '<｜User｜>' + message['content'] }}"
    "{% elif message['role'] == 'assistant' %}{{ '<｜Assistant｜>' + message['content'] + eos_token }}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<｜Assistant｜>' }}{% endif %}")


def byte_to_char():
    """GPT-2's map of the 256 bytes to printable characters (ByteLevel in tokenizers)."""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


BYTE_CHAR = byte_to_char()


def pieces(text):
    """Pre-tokenized pieces, each as its byte-level string."""
    for piece in SPLIT.findall(text):
        yield "".join(BYTE_CHAR[b] for b in piece.encode("utf-8"))


def train(texts, vocab_size):
    words = collections.Counter()
    for text in texts:
        words.update(pieces(text))
    base = sorted(BYTE_CHAR.values(), key=lambda c: [k for k, v in BYTE_CHAR.items() if v == c][0])
    symbols = {c: i for i, c in enumerate(base)}  # symbol id -> string later
    names = list(base)
    word_syms = [[symbols[c] for c in w] for w in words]
    counts = list(words.values())
    pair_count = collections.Counter()
    where = collections.defaultdict(set)
    for wi, syms in enumerate(word_syms):
        for a, b in zip(syms, syms[1:]):
            pair_count[(a, b)] += counts[wi]
            where[(a, b)].add(wi)
    heap = [(-c, names[a], names[b], (a, b)) for (a, b), c in pair_count.items()]
    heapq.heapify(heap)
    merges = []
    target = vocab_size - len(SPECIALS) - 256
    while len(merges) < target and heap:
        neg, _, _, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -neg or -neg <= 0:
            continue
        a, b = pair
        new = len(names)
        names.append(names[a] + names[b])
        merges.append((names[a], names[b]))
        changed = set()
        for wi in list(where.pop(pair, ())):
            syms, c = word_syms[wi], counts[wi]
            for x, y in zip(syms, syms[1:]):
                pair_count[(x, y)] -= c
            out, i = [], 0
            while i < len(syms):
                if i + 1 < len(syms) and syms[i] == a and syms[i + 1] == b:
                    out.append(new)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            word_syms[wi] = out
            for x, y in zip(out, out[1:]):
                pair_count[(x, y)] += c
                where[(x, y)].add(wi)
                changed.add((x, y))
        pair_count.pop(pair, None)
        for p in changed:
            if pair_count[p] > 0:
                heapq.heappush(heap, (-pair_count[p], names[p[0]], names[p[1]], p))
    vocab = {s: i for i, s in enumerate(SPECIALS)}
    for s in base:
        vocab[s] = len(vocab)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    return vocab, merges


class Encoder:
    def __init__(self, vocab, merges):
        self.vocab = vocab
        self.rank = {pair: i for i, pair in enumerate(merges)}
        self.cache = {}
        self.special = {s: vocab[s] for s in SPECIALS}
        self.special_split = regex.compile("(" + "|".join(map(regex.escape, SPECIALS)) + ")")

    def _word(self, word):
        cached = self.cache.get(word)
        if cached is not None:
            return cached
        parts = list(word)
        while len(parts) > 1:
            best, at = None, -1
            for i in range(len(parts) - 1):
                r = self.rank.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best):
                    best, at = r, i
            if best is None:
                break
            a, b = parts[at], parts[at + 1]
            out, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == a and parts[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            parts = out
        ids = [self.vocab[p] for p in parts]
        self.cache[word] = ids
        return ids

    def encode(self, text):
        """Plain text, with the four special tokens recognised where they appear."""
        ids = []
        for chunk in self.special_split.split(text):
            if chunk in self.special:
                ids.append(self.special[chunk])
            elif chunk:
                for piece in pieces(chunk):
                    ids.extend(self._word(piece))
        return ids

    def decode(self, ids):
        inverse = {i: s for s, i in self.vocab.items()}
        char_byte = {c: b for b, c in BYTE_CHAR.items()}
        out = bytearray()
        for i in ids:
            s = inverse[i]
            if s in self.special:
                out += s.encode()
            else:
                out += bytes(char_byte[c] for c in s)
        return out.decode("utf-8", errors="replace")


def write_hf(vocab, merges, out_dir, max_length):
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    added = [{"id": vocab[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for s in SPECIALS]
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": []},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": SPLIT_PATTERN}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }
    (out / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False, indent=1) + "\n")

    def token(s):
        return {"__type": "AddedToken", "content": s, "lstrip": False, "normalized": True, "rstrip": False,
                "single_word": False}

    config = {"add_bos_token": True, "add_eos_token": False, "bos_token": token(BOS), "eos_token": token(EOS),
              "pad_token": token(EOS), "unk_token": None, "clean_up_tokenization_spaces": False,
              "model_max_length": max_length, "tokenizer_class": "LlamaTokenizerFast",
              "chat_template": CHAT_TEMPLATE}
    (out / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False, indent=1) + "\n")


def load(out_dir):
    tok = json.loads((pathlib.Path(out_dir) / "tokenizer.json").read_text())
    merges = [tuple(m.split(" ")) for m in tok["model"]["merges"]]
    return Encoder(tok["model"]["vocab"], merges)


def render_chat(question, answer):
    """The chat template's text for one exchange (kept equal to CHAT_TEMPLATE)."""
    return f"{USER}{question}{ASSISTANT}{answer}{EOS}"


if __name__ == "__main__":
    corpus, out_dir, size = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    texts = [json.loads(l)["text"] for l in (corpus / "train.jsonl").open()]
    texts += [c["question"] + "\n" + c["answer"] for c in map(json.loads, (corpus / "chat.jsonl").open())]
    vocab, merges = train(texts, size)
    write_hf(vocab, merges, out_dir, max_length=int(sys.argv[4]) if len(sys.argv) > 4 else 512)
    print(f"bpe: {len(vocab)} tokens, {len(merges)} merges -> {out_dir}")
