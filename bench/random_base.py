#!/usr/bin/env python3
"""The random-initialisation baseline of a base model: the same config.json
and tokenizer files, weights freshly initialised by transformers (normal,
std = initializer_range), written as model.safetensors.

    .venv/bin/python bench/random_base.py SRC_MODEL_DIR OUT_DIR [SEED]
"""
import os, shutil, sys

import torch
from transformers import AutoConfig, AutoModelForMaskedLM


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 42
    if not os.path.isfile(os.path.join(src, "config.json")):
        sys.exit(f"random_base: {src}/config.json: no such file (expected a model directory)")
    torch.manual_seed(seed)
    config = AutoConfig.from_pretrained(src)
    model = AutoModelForMaskedLM.from_config(config)
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                 "merges.txt", "vocab.json"):
        if os.path.isfile(os.path.join(src, name)):
            shutil.copy(os.path.join(src, name), out)
    print(f"random_base: {out}: {config.model_type}, {config.num_hidden_layers} layers, hidden "
          f"{config.hidden_size}, random init (seed {seed})")


if __name__ == "__main__":
    main()
