#!/usr/bin/env bash
# `make run`: the main job. A LoRA run on RTE with a progress bar, on the
# default base model (scripts/default-model.sh says which, and fetches or
# builds one when there is none; BILORA_MODEL overrides).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BILORA_ASSETS:-}" ] && [ -d ../shared/data/glue ]; then
  export BILORA_ASSETS="$(cd ../shared && pwd)"
fi
model=$(scripts/default-model.sh) || exit 1
echo "make run: LoRA on RTE with base model '$model' (BILORA_MODEL overrides)" >&2
exec ./bilora train --model "$model" --task RTE --method lora --epochs "${BILORA_EPOCHS:-3}" \
  --batch-size 16 --max-seq-len 128 --lr 5e-4
