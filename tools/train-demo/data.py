"""Token streams for training and the validation windows shared with `moelens-cli perplexity`."""
import json
import pathlib

import numpy as np

import bpe


def training_stream(corpus_dir, encoder, seed, chat_repeats=3):
    """Every training document as [BOS] text [EOS] and every chat example (repeated, so
    the template is learned) as its chat-template text, shuffled once, concatenated."""
    corpus = pathlib.Path(corpus_dir)
    bos, eos = encoder.vocab[bpe.BOS], encoder.vocab[bpe.EOS]
    units = [[bos] + encoder.encode(json.loads(line)["text"]) + [eos] for line in (corpus / "train.jsonl").open()]
    chats = [json.loads(line) for line in (corpus / "chat.jsonl").open()]
    units += [[bos] + encoder.encode(bpe.render_chat(c["question"], c["answer"]))
              for c in chats] * chat_repeats
    order = np.random.default_rng(seed).permutation(len(units))
    return np.concatenate([np.asarray(units[i], dtype=np.int32) for i in order])


def validation_windows(text, encoder, window):
    """The perplexity procedure (also `moelens-cli perplexity`): the text's ids without
    special tokens, cut into chunks of window-1 tokens; each chunk is scored on its own
    as [BOS] + chunk, every chunk token predicted from what precedes it in the window."""
    ids = encoder.encode(text)
    bos = encoder.vocab[bpe.BOS]
    step = window - 1
    return [[bos] + ids[i:i + step] for i in range(0, len(ids), step)]
