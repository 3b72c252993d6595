#!/usr/bin/env python3
"""sacreBLEU's view of a BLEU test case, for tests/test_bleu.c.

Usage: check_bleu.py CASE.json

CASE.json: {"lines": [str...], "hyps": [str...], "refs": [[str...]...]}
(refs[i]: the references of hyps[i], any number). Prints one JSON object:
{"tokens": [Tokenizer13a(line)...], "score", "precisions", "bp",
"sys_len", "ref_len", "counts", "totals"} from sacrebleu.BLEU() with its
defaults (13a, exp smoothing), references padded with None as sacrebleu
allows for a variable number of references.
"""
import json
import sys

import sacrebleu
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

case = json.load(open(sys.argv[1], encoding="utf-8"))
tok = Tokenizer13a()
most = max(len(r) for r in case["refs"])
streams = [[r[k] if k < len(r) else None for r in case["refs"]] for k in range(most)]
s = sacrebleu.BLEU().corpus_score(case["hyps"], streams)
print(json.dumps({"tokens": [tok(x.rstrip()) for x in case["lines"]], "score": s.score,
                  "precisions": s.precisions, "bp": s.bp, "sys_len": s.sys_len, "ref_len": s.ref_len,
                  "counts": s.counts, "totals": s.totals, "version": sacrebleu.__version__}))
