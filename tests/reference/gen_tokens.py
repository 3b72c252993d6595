#!/usr/bin/env python3
"""Reference token ids from the Hugging Face peers, for tests/test_tokenizer.c.

Usage: gen_tokens.py OUT_DIR

For each model in $BILORA_ASSETS/models (bert-tiny, roberta-base, gpt2) and
each GLUE dev set (CoLA, SST-2, MRPC, STS-B, RTE) under
$BILORA_ASSETS/data/glue/<TASK>/dev.tsv, writes

    OUT_DIR/tokens/<model>/<TASK>.tsv        no truncation
    OUT_DIR/tokens/<model>/<TASK>.max32.tsv  max_length=32, truncation="longest_first"
    OUT_DIR/tokens/<model>/edge.tsv          hand-picked hard cases (accents,
    OUT_DIR/tokens/<model>/edge.max11.tsv    CJK, control characters, odd
    OUT_DIR/tokens/<model>/edge.max12.tsv    whitespace, special tokens)
    OUT_DIR/tokens/<model>/model_type        "bert", "roberta" or "gpt2"

one line per example: text_a TAB text_b (empty when single) TAB ids TAB
token_type_ids (ids space-separated). The ids come from the *fast* classes
(the Rust `tokenizers` library, the reference the C tokenizer follows); the
slow Python classes are run too and every disagreement with the fast ones
is listed in OUT_DIR/tokens_slow_vs_fast.txt (known: pair truncation, where
the slow loop removes one token at a time and breaks ties the other way).

Type ids: BERT's are what HF returns. RoBERTa's are asked for explicitly
(all 0). GPT-2's default call returns no token_type_ids at all (GPT-2 takes
none: passing them would add wte rows to the hidden states), so the file
says 0 everywhere, which is what datasets/tokenizer.h promises for gpt2.
"""
import os
import sys
from pathlib import Path

MODELS = [
    # (directory, model_type, fast class, slow class)
    ("bert-tiny", "bert", "BertTokenizerFast", "BertTokenizer"),
    ("roberta-base", "roberta", "RobertaTokenizerFast", "RobertaTokenizer"),
    ("gpt2", "gpt2", "GPT2TokenizerFast", "GPT2Tokenizer"),
]

# task: (has header, column of sentence 1, column of sentence 2 or None)
TASKS = {
    "CoLA": (False, 3, None),
    "SST-2": (True, 0, None),
    "MRPC": (True, 3, 4),
    "STS-B": (True, 7, 8),
    "RTE": (True, 1, 2),
}

MAX_LEN = 32

# Hard cases; no TAB, LF or CR in them (the file format splits on those).
EDGE = [
    ("the capital of france is [MASK] .", None),
    ("Hello world", None),
    ("Héllo Wörld ÀÉÎÕÜ naïve café façade Ångström", None),
    ("北京欢迎你 hello世界 ｆｕｌｌｗｉｄｔｈ カタカナ 한국어", None),
    ("a\x07b\x07c\ufffdd\u200be\u00a0f\u2028g\x85h\x0bi\x0cj\x1fk", None),
    ("İstanbul ΣΑΣ ﬁ ǅ ß ẞ", None),
    ("e\u0301 a\u0308 n\u0303 (combining marks)", None),
    ("🥺 🫠 emoji 👍🏽 family: 👨‍👩‍👧", None),
    ("don't we'll I'M  spaced   out  ", None),
    ("  leading and trailing spaces  ", None),
    ("Hello <mask> there <s> </s> <pad>", None),
    ("x <|endoftext|> y<|endoftext|>z", None),
    ("[CLS] [SEP] [PAD] [UNK] [mask] [MASK][MASK]", None),
    ("a" * 120 + " short", None),
    ("\u3000full\u2003width\u205f. \u2009thin \u202fnarrow \u1680ogham", None),
    ("$5.00 + 3^2 = 14 | ~tilde` <>= @#%&*", None),
    ("¿Qué? ¡Sí! «quotes» “curly” ‘single’ — dash … ellipsis", None),
    ("numbers 1234567 ١٢٣ ½ ² Ⅻ", None),
    ("", None),
    ("first sentence of a pair .", "second one , somewhat longer than the first ."),
    ("a b c d e f g h i j", "k l m n o p q r s t"),
]


def die(msg):
    print(f"gen_tokens.py: {msg}", file=sys.stderr)
    sys.exit(1)


def read_glue(path, task):
    """GLUE TSV: split on LF and TAB only, no quoting, drop a BOM and a
    trailing CR; CoLA's dev file has no header."""
    header, c1, c2 = TASKS[task]
    raw = path.read_bytes().decode("utf-8")
    if raw.startswith("\ufeff"):
        raw = raw[1:]
    lines = raw.split("\n")
    out = []
    for lineno, line in enumerate(lines, 1):
        if line.endswith("\r"):
            line = line[:-1]
        if lineno == 1 and header:
            continue
        if line == "":
            continue
        cols = line.split("\t")
        need = max(c1, c2 if c2 is not None else 0) + 1
        if len(cols) < need:
            die(f"{path}: line {lineno}: {len(cols)} columns, expected at least {need}")
        a = cols[c1]
        b = cols[c2] if c2 is not None else None
        for s in (a, b):
            if s is not None and ("\r" in s or s == ""):
                die(f"{path}: line {lineno}: empty sentence or stray CR")
        out.append((a, b))
    return out


def encode(tok, model_type, a, b, max_len):
    kw = {"add_special_tokens": True}
    if max_len:
        kw.update(truncation="longest_first", max_length=max_len)
    if model_type != "gpt2":
        kw["return_token_type_ids"] = True
    enc = tok(a, b, **kw) if b is not None else tok(a, **kw)
    ids = list(enc["input_ids"])
    types = list(enc["token_type_ids"]) if model_type != "gpt2" else [0] * len(ids)
    return ids, types


def main():
    if len(sys.argv) != 2:
        die("usage: gen_tokens.py OUT_DIR")
    out_dir = Path(sys.argv[1])
    here = Path(__file__).resolve().parent
    assets = Path(os.environ.get("BILORA_ASSETS") or (here / "../../../shared")).resolve()
    if not (assets / "models").is_dir() or not (assets / "data" / "glue").is_dir():
        die(f"assets not found: {assets} has no models/ and data/glue/ "
            "(set BILORA_ASSETS to the shared assets directory)")
    try:
        import transformers
        from transformers.utils import logging as hf_logging
    except ImportError as e:
        die(f"cannot import transformers ({e}); run with the project venv (.venv/bin/python)")
    hf_logging.set_verbosity_error()

    data = {}
    for task in TASKS:
        p = assets / "data" / "glue" / task / "dev.tsv"
        if not p.is_file():
            die(f"missing GLUE file {p}")
        data[task] = read_glue(p, task)
    data["edge"] = EDGE

    diffs = []
    summary = []
    for model, model_type, fast_name, slow_name in MODELS:
        mdir = assets / "models" / model
        if not mdir.is_dir():
            die(f"missing model directory {mdir}")
        fast = getattr(transformers, fast_name).from_pretrained(str(mdir))
        slow = getattr(transformers, slow_name).from_pretrained(str(mdir))
        if not fast.is_fast:
            die(f"{fast_name} from {mdir} is not a fast tokenizer")
        tdir = out_dir / "tokens" / model
        tdir.mkdir(parents=True, exist_ok=True)
        (tdir / "model_type").write_text(model_type + "\n")
        for task, rows in data.items():
            # the edge cases are short: tighter budgets (odd and even) make them truncate
            lens = [0, 11, 12] if task == "edge" else [0, MAX_LEN]
            for max_len in lens:
                name = task + (f".max{max_len}" if max_len else "") + ".tsv"
                lines = []
                for a, b in rows:
                    ids, types = encode(fast, model_type, a, b, max_len)
                    sids, stypes = encode(slow, model_type, a, b, max_len)
                    if (sids, stypes) != (ids, types):
                        diffs.append(f"{model}\t{name}\t{a!r}\t{b!r}\tfast={ids} {types}\t"
                                     f"slow={sids} {stypes}")
                    lines.append("\t".join([a, b or "", " ".join(map(str, ids)),
                                            " ".join(map(str, types))]))
                (tdir / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
                summary.append(f"{model}/{name}: {len(lines)}")
    (out_dir / "tokens_slow_vs_fast.txt").write_text(
        "".join(d + "\n" for d in diffs), encoding="utf-8")
    print(f"gen_tokens.py: transformers {transformers.__version__}; wrote "
          f"{len(summary)} files under {out_dir / 'tokens'} ({', '.join(summary)})")
    print(f"gen_tokens.py: slow and fast classes disagree on {len(diffs)} encodings "
          f"(listed in {out_dir / 'tokens_slow_vs_fast.txt'})")


if __name__ == "__main__":
    main()
