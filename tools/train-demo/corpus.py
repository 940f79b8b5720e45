"""Builds the demo model's corpus from the reStructuredText sources of the Python
documentation (Debian's python3.11-doc, PSF licence; code examples Zero-Clause BSD).

Markup is cleaned lightly so the model learns prose and code, not Sphinx: roles keep
their text, labels/index entries/comments go, heading underlines go, host names
become example.org. Each cleaned file is cut at blank lines into blocks of about
2,000 characters, and one block in twenty (chosen by a checksum of the path and the
block's index, so the split is fixed across runs and machines) is held out for
validation: validation text comes from every part of the documentation, never seen
in training. Besides the
plain text, each section heading of a training file with a prose first paragraph
becomes one chat example (question from the heading, answer = that paragraph), so
the chat template has something to mean.
"""
import json
import pathlib
import re
import sys
import zlib

SOURCES = pathlib.Path("/usr/share/doc/python3.11/html/_sources")
VALIDATION_MODULUS = 20  # about 5% of the blocks
BLOCK_CHARS = 2000

ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`([^`]*)`")
URL_HOST = re.compile(r"(https?|ftp)://[^/\s>`'\")]+")
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(\.[\w-]+)+\b")
UNDERLINE = re.compile(r"^([=\-~^*#+\"'`])\1{2,}\s*$")
DROP_DIRECTIVES = ("index", "highlight", "sectionauthor", "moduleauthor", "toctree", "testsetup",
                   "testcleanup", "only", "raw", "include", "literalinclude", "csv-table", "image",
                   "figure", "productionlist", "currentmodule", "module", "program", "audit-event",
                   "availability", "impl-detail", "opcode", "cmdoption", "envvar", "tabularcolumns")


def role_text(match):
    text = match.group(1).lstrip("!")
    target = re.match(r"^(.*?)\s*<[^>]*>$", text)
    if target and target.group(1):
        return target.group(1)
    if text.startswith("~"):
        return text[1:].rsplit(".", 1)[-1]
    return text


def clean(text):
    out = []
    skipping_block = False
    for line in text.splitlines():
        stripped = line.strip()
        if skipping_block:
            if stripped == "" or line[:1] in (" ", "\t"):
                continue
            skipping_block = False
        if stripped.startswith(".. "):
            body = stripped[3:]
            directive = re.match(r"^([\w-]+)::\s*(.*)$", body)
            if directive is None or directive.group(1) in DROP_DIRECTIVES:
                skipping_block = True  # a comment, label, or directive we drop with its body
                continue
            name, rest = directive.groups()
            line = f"{name.capitalize()}: {rest}".rstrip() if rest else f"{name.capitalize()}:"
        elif UNDERLINE.match(line):
            continue
        line = ROLE.sub(role_text, line)
        line = line.replace("``", "`")
        line = URL_HOST.sub(lambda m: f"{m.group(1)}://example.org", line)
        line = EMAIL.sub("user@example.org", line)
        out.append(line.rstrip())
    cleaned = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", cleaned).strip() + "\n"


def chat_examples(raw):
    """(question, answer) pairs from section headings and their first prose paragraph."""
    lines = raw.splitlines()
    pairs = []
    for i in range(len(lines) - 2):
        title, underline = lines[i].strip(), lines[i + 1]
        if not title or not UNDERLINE.match(underline) or UNDERLINE.match(lines[i]):
            continue
        title = ROLE.sub(role_text, title).replace("``", "`").strip("* ")
        if not (3 <= len(title) <= 60) or title.endswith(":"):
            continue
        paragraph, j = [], i + 2
        while j < len(lines) and not lines[j].strip():
            j += 1
        while j < len(lines) and lines[j].strip() and not lines[j].startswith((" ", "\t", "..")):
            paragraph.append(lines[j].strip())
            j += 1
        answer = clean(" ".join(paragraph)).strip()
        if 80 <= len(answer) <= 700 and not UNDERLINE.match(lines[j - 1] if j else ""):
            forms = ("What is {}?", "Tell me about {}.", "Can you explain {}?", "What should I know about {}?")
            question = forms[zlib.crc32(title.encode()) % len(forms)].format(title)
            pairs.append({"question": question, "answer": answer})
    return pairs


def blocks(doc):
    """The document cut at blank lines into blocks of about BLOCK_CHARS characters."""
    out, current = [], ""
    for paragraph in doc.split("\n\n"):
        current = f"{current}\n\n{paragraph}" if current else paragraph
        if len(current) >= BLOCK_CHARS:
            out.append(current)
            current = ""
    if current:
        out.append(current)
    return out


def main(out_dir):
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train, val, chats = [], [], []
    files = sorted(SOURCES.rglob("*.rst.txt"))
    if not files:
        sys.exit(f"corpus: no .rst.txt files under {SOURCES} (install python3.11-doc)")
    for path in files:
        rel = str(path.relative_to(SOURCES))
        raw = path.read_text(encoding="utf-8", errors="replace")
        doc = clean(raw)
        if len(doc) < 200:
            continue
        chats.extend(chat_examples(raw))
        train_blocks = []
        for index, block in enumerate(blocks(doc)):
            if zlib.crc32(f"{rel}#{index}".encode()) % VALIDATION_MODULUS == 0:
                val.append(block)
            else:
                train_blocks.append(block)
        train.append("\n\n".join(train_blocks))
    # A chat answer is a cleaned paragraph: drop those whose paragraph was held out.
    held_out = " ".join(" ".join(val).split())
    chats = [c for c in chats if " ".join(c["answer"].split())[:100] not in held_out]
    (out / "train.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in train))
    (out / "val.txt").write_text("\n\n".join(val) + "\n")
    (out / "chat.jsonl").write_text("".join(json.dumps(c) + "\n" for c in chats))
    stats = {"files": len(train), "validation_blocks": len(val), "chat_examples": len(chats),
             "chars_train": sum(map(len, train)), "chars_val": sum(map(len, val))}
    (out / "corpus_stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    print("corpus:", stats)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out/corpus")
