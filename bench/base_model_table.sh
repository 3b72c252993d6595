#!/usr/bin/env bash
# LoRA dev metric per base model: the same LoRA run (steps, batch, seed) on
# each task from each base model, one table. The base-models issue's evidence:
# a pretrained base must clearly beat random initialisation.
#
#   bench/base_model_table.sh "MODEL1 MODEL2 ..." "TASK1 TASK2 ..." [STEPS] [BATCH] [SEQ]
#
# Models are names on the asset path or directories; a random-initialised
# model with the same shape is one (tests/reference/gen_hf_models.py writes
# build/reference/models/bert-mini-random).
set -uo pipefail
cd "$(dirname "$0")/.."
models=${1:?models}; tasks=${2:?tasks}; steps=${3:-150}; batch=${4:-16}; seq=${5:-128}
out=$(mktemp -d)
printf '%-28s' "model \\ task"
for t in $tasks; do printf '%18s' "$t"; done
printf '\n'
for m in $models; do
  printf '%-28s' "$(basename "$m")"
  for t in $tasks; do
    log="$out/$(basename "$m")-$t.jsonl"
    ./bilora train --model "$m" --task "$t" --method lora --steps "$steps" --batch-size "$batch" \
      --max-seq-len "$seq" --lr 1e-3 --eval-every "$steps" --eval-train-examples 256 --seed 42 \
      --json > "$log" 2> "$out/err" || { printf '%18s' "error"; continue; }
    # the done event's first dev metric (the task's headline) and its value
    python3 - "$log" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("event") == "done":
        (k, v), = list(e["dev_metrics"].items())[:1]
        print(f"{k[:4]} {v:.4f}".rjust(18), end="")
PY
  done
  printf '\n'
done
echo "($steps steps, batch $batch, max length $seq, LoRA r=8 on query,value, lr 1e-3, seed 42; logs in $out)"
