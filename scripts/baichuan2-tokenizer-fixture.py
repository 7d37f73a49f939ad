#!/usr/bin/env python3
"""Train the small SentencePiece model behind the Baichuan2 conversion tests, and record how the
real sentencepiece library encodes a set of strings with it.

The model is trained with Baichuan2's tokenizer settings (BPE, byte fallback, split digits, no
normalisation, no dummy prefix, whitespace kept), and its ids 195/196 are `<reserved_106>` and
`<reserved_107>`, the user and assistant tokens of Baichuan2's chat format, as in the real vocabulary.

    python3 -m venv /tmp/sp && /tmp/sp/bin/pip install sentencepiece==0.2.0 pypdf==5.1.0
    /tmp/sp/bin/python scripts/baichuan2-tokenizer-fixture.py tests/fixtures/baichuan2-tiny
"""
import json
import pathlib
import sys

import pypdf
import sentencepiece as spm

ROOT = pathlib.Path(__file__).resolve().parent.parent
out = pathlib.Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)

english = (ROOT / "corpora/bitcoin_intro.txt").read_text(encoding="utf-8")
chinese = "\n".join(page.extract_text() or "" for page in pypdf.PdfReader(ROOT / "corpora/bitcoin_zh_cn.pdf").pages[:3])
corpus = out / "train.txt"
corpus.write_text(english + "\n" + chinese, encoding="utf-8")

# ids 0-2 are <unk> <s> </s>; 86 placeholders then <reserved_0>.. put <reserved_106> at 195.
symbols = [f"<unused_{i}>" for i in range(86)] + [f"<reserved_{i}>" for i in range(108)]
spm.SentencePieceTrainer.train(
    input=str(corpus),
    model_prefix=str(out / "tokenizer"),
    model_type="bpe",
    vocab_size=1200,
    byte_fallback=True,
    split_digits=True,
    normalization_rule_name="identity",
    add_dummy_prefix=False,
    remove_extra_whitespaces=False,
    allow_whitespace_only_pieces=True,
    character_coverage=0.9995,
    user_defined_symbols=symbols,
    unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
    max_sentencepiece_length=16,
    num_threads=1,
    seed_sentencepiece_size=100000,
)
corpus.unlink()
(out / "tokenizer.vocab").unlink()

sp = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
assert sp.id_to_piece(195) == "<reserved_106>" and sp.id_to_piece(196) == "<reserved_107>"
samples = [
    "Bitcoin: A Peer-to-Peer Electronic Cash System",
    "A purely peer-to-peer version of electronic cash would allow online payments.",
    "  two leading spaces,\ttabs\tand\nnew lines\n\n",
    "Numbers split: 2008 and 3.14159, 1,000,000 BTC.",
    "比特币：一种点对点的电子现金系统",
    "未见过的字：龘靐齉 and emoji 🙂 fall back to bytes",
    "MixedCASE words, punctuation!? (brackets) [and] {braces} — dashes",
    "<reserved_106>What is double spending?<reserved_107>",
]
encodings = [{"text": s, "ids": sp.encode(s)} for s in samples]
for e in encodings:
    assert sp.decode(e["ids"]) == e["text"] or "<reserved" in e["text"], e
lines = ",\n".join(json.dumps(e, ensure_ascii=False) for e in encodings)
(out / "encodings.json").write_text("[\n" + lines + "\n]\n", encoding="utf-8")
print(sp.get_piece_size(), "pieces;", sum(len(e["ids"]) for e in encodings), "ids in", len(samples), "samples")
