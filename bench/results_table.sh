#!/usr/bin/env bash
# The bi-level issue's results table: each method on each task with several
# seeds, the same base model, rank, steps and batch; mean ± std of the task's
# headline dev metric and of the final train−dev loss gap (train-subset loss
# minus dev loss at the last evaluation: negative = dev worse than train).
#
#   bench/results_table.sh [MODEL] [TASKS] [METHODS] [SEEDS] [STEPS] [BATCH] [SEQ]
#
# Defaults: the default base model, "SST-2", "lora dora adalora bilora bidora",
# "1 2 3", 150 steps, batch 16, max length 64. Every method: r=8 on
# query,value, lower lr 1e-3; adalora starts at r=12 and keeps an average of
# 8 (AdaLoRA's 1.5x initial budget); bilora: softmax λ, darts, D1/D2 0.8/0.2,
# upper lr 5e-3; bidora: the same split and hypergradient. Logs (JSON lines)
# stay in the printed directory; RESULTS_DIR=DIR keeps them there, and a run
# whose log is complete is not run again. JOBS=N runs N at once. Each run is
# also a bilora session (DIR/sessions, a snapshot every 25 steps): a run cut
# off by a reboot or a killed shell continues from its last snapshot with
# `bilora resume` when the table is asked for again, exactly as if it had
# never stopped; its log then holds the steps after that snapshot twice, and
# its time is left out of s/run.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BILORA_ASSETS:-}" ] && [ -d ../shared/data/glue ]; then
  export BILORA_ASSETS="$(cd ../shared && pwd)"
fi
model=${1:-$(scripts/default-model.sh)} || exit 1
tasks=${2:-SST-2}
methods=${3:-lora dora adalora bilora bidora}
seeds=${4:-1 2 3}
steps=${5:-150}; batch=${6:-16}; seq=${7:-64}
out=${RESULTS_DIR:-$(mktemp -d)}
jobs=${JOBS:-1}
mkdir -p "$out"
echo "results: $model, $steps steps, batch $batch, max length $seq; $jobs at a time; logs in $out"
# JOBS=N runs N trainings at once, each with one BLAS thread: on 2 cores two
# single-thread runs do ~1.7x the work of one two-thread run (bench_lora:
# 9.8 ex/s with 1 thread, 11.4 with 2; these GEMMs do not scale across
# cores). Timings (s/run) are then per single-thread run.
if [ "$jobs" -gt 1 ]; then export OPENBLAS_NUM_THREADS=1; fi
# Every run of a results folder uses one binary: the first call copies
# ./bilora into the folder, later calls (other tasks, resumed runs) use that
# copy, so rebuilding the working tree does not mix versions in one table.
# A table is reproducible only from a committed build: one built from
# uncommitted changes ("-dirty" in `bilora --version`) is refused unless
# ALLOW_DIRTY=1.
bin="$out/bilora"
if [ ! -x "$bin" ]; then
  build=$(./bilora --version | head -1) || exit 1
  case $build in *-dirty) if [ "${ALLOW_DIRTY:-0}" != 1 ]; then
    echo "results: ./bilora ($build) was built from uncommitted changes; commit and rebuild, or set ALLOW_DIRTY=1" >&2
    exit 1
  fi ;; esac
  cp ./bilora "$bin" || exit 1
  echo "  binary: ./bilora ($build) copied to $bin" >&2
fi
v=$("$bin" --version 2>/dev/null | head -1)
echo "  build: ${v:-unknown (a build older than bilora --version)}" >&2
export BILORA_SESSIONS="$out/sessions"
save_every=${SAVE_EVERY:-25}
run_one() { # task method seed
  local t=$1 m=$2 s=$3 extra=()
  case $m in
    adalora) extra=(--rank 12 --target-rank 8) ;;
    bilora) extra=(--lambda softmax --hypergrad darts --split-ratio 0.8 --upper-lr 5e-3) ;;
    bidora) extra=(--hypergrad darts --split-ratio 0.8 --upper-lr 5e-3) ;;
  esac
  local name="$t-$m-$s" t0=$SECONDS
  local log="$out/$name.jsonl" err="$out/$name.err"
  [ -s "$log" ] && grep -q '"event":"done"' "$log" && return 0 # kept from an earlier call
  if [ -s "$log" ] && [ -d "$BILORA_SESSIONS/$name" ]; then # cut off: continue from its snapshot
    echo "  $t $m seed $s: continuing from its last snapshot" >&2
    "$bin" resume "$name" --json --save-every "$save_every" >> "$log" 2>> "$err" ||
      { echo "  $t $m seed $s: resume failed (see $err)" >&2; return 0; }
  else
    rm -rf "${BILORA_SESSIONS:?}/$name"
    "$bin" train --model "$model" --task "$t" --method "$m" --rank 8 --steps "$steps" --batch-size "$batch" \
      --max-seq-len "$seq" --lr 1e-3 --eval-every "$steps" --eval-train-examples 512 --seed "$s" \
      "${extra[@]}" --session "$name" --save-every "$save_every" --json > "$log" 2> "$err" ||
      { echo "  $t $m seed $s: failed (see $err)" >&2; return 0; }
  fi
  echo "  $t $m seed $s: $((SECONDS - t0)) s" >&2
}
for t in $tasks; do
  for m in $methods; do
    for s in $seeds; do
      while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
      run_one "$t" "$m" "$s" &
    done
  done
done
wait
python3 - "$out" "$tasks" "$methods" "$seeds" <<'PY'
import json, math, os, sys
out, tasks, methods, seeds = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split()
def ms(xs):
    if not xs: return "-"
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return f"{m:.4f} ± {sd:.4f}"
print("| task | method | trainable | dev metric (mean ± std) | train−dev loss gap | seeds | s/run |")
print("|---|---|---|---|---|---|---|")
for t in tasks:
    for m in methods:
        metric, gaps, secs, name, params = [], [], [], "", ""
        for s in seeds:
            p = os.path.join(out, f"{t}-{m}-{s}.jsonl")
            if not os.path.exists(p): continue
            last, resumed = 0, False
            for line in open(p):
                try: e = json.loads(line)
                except ValueError: continue # the cut-off last line of an interrupted run
                if e.get("event") == "step":
                    resumed |= e["step"] <= last
                    last = e["step"]
                if e.get("event") != "done" or "dev_metrics" not in e: continue
                (name, v), = list(e["dev_metrics"].items())[:1]
                metric.append(v)
                gaps.append(e["train_eval_loss"] - e["dev_loss"])
                if not resumed: secs.append(e["seconds"]) # a resumed run's "done" times its last piece only
                params = f'{e["trainable_params"]:,}'
        sr = f"{sum(secs) / len(secs):.0f}" if secs else "-"
        print(f"| {t} | {m} | {params} | {name} {ms(metric)} | {ms(gaps)} | {len(metric)} | {sr} |"
              if metric else f"| {t} | {m} | | - | - | 0 | |")
PY
