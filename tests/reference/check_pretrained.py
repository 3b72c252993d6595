"""Checks a model directory written by `bilora pretrain` with Hugging Face.

usage: check_pretrained.py MODEL_DIR SAMPLE_JSON

SAMPLE_JSON (written by tests/test_pretrain.c) holds one masked batch and the
MLM loss bilora computed for it (for GPT2LMHeadModel: a plain batch, labels the
inputs with -100 at padding, which transformers shifts, and the causal-LM
loss; no token_type_ids or mask_id):
  {"input_ids": [[...]], "token_type_ids": [[...]], "attention_mask": [[...]],
   "labels": [[...]] (-100 where not predicted), "loss": float,
   "architecture": "BertForMaskedLM", "mask_id": int}

Passes (exit 0) when AutoModelForMaskedLM.from_pretrained loads the
directory with no missing, unexpected or mismatched weights, the config names
the expected architecture, AutoTokenizer loads the copied tokenizer files
(with the same mask token id), and the model's MLM loss on the sample matches
bilora's to 1e-4 (relative). Prints what it compared.
"""

import json
import math
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer  # noqa: E402


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    model_dir, sample_path = sys.argv[1], sys.argv[2]
    with open(sample_path) as f:
        sample = json.load(f)

    causal = sample["architecture"] == "GPT2LMHeadModel"
    auto = AutoModelForCausalLM if causal else AutoModelForMaskedLM
    model, info = auto.from_pretrained(model_dir, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        print(f"loading {model_dir}: {problems}", file=sys.stderr)
        return 1
    arch = model.config.architectures
    if arch != [sample["architecture"]] or type(model).__name__ != sample["architecture"]:
        print(f"architecture: config says {arch}, loaded {type(model).__name__}, "
              f"expected {sample['architecture']}", file=sys.stderr)
        return 1
    tok = AutoTokenizer.from_pretrained(model_dir)
    if causal:
        if tok.eos_token != "<|endoftext|>":
            print(f"tokenizer: eos {tok.eos_token!r}, expected <|endoftext|>", file=sys.stderr)
            return 1
    elif tok.mask_token_id != sample["mask_id"]:
        print(f"tokenizer: mask id {tok.mask_token_id}, bilora used {sample['mask_id']}",
              file=sys.stderr)
        return 1

    model.eval()
    with torch.no_grad():
        kw = {} if causal else {"token_type_ids": torch.tensor(sample["token_type_ids"])}
        out = model(
            input_ids=torch.tensor(sample["input_ids"]),
            attention_mask=torch.tensor(sample["attention_mask"]),
            labels=torch.tensor(sample["labels"]),
            **kw,
        )
    hf = float(out.loss)
    ours = float(sample["loss"])
    print(f"{type(model).__name__} from {model_dir}: no missing/unexpected weights; "
          f"{'LM' if causal else 'MLM'} loss transformers {hf:.6f} bilora {ours:.6f}")
    if not math.isfinite(hf) or abs(hf - ours) > 1e-4 * max(1.0, abs(hf)):
        print(f"MLM loss differs: transformers {hf:.7f}, bilora {ours:.7f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
