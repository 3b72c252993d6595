#!/usr/bin/env bash
# What the workbench costs a run: the same LoRA run headless (`bilora train
# --json`) and with the TUI open (`bilora tui --stats` in a 100x30 tmux
# pane), alternated ROUNDS times so machine drift hits both alike. Prints a
# table: time in training steps (the trainer's own clock: evaluations and
# model loading excluded, the same measure on both sides), wall time,
# steps/s, the ratio TUI/headless, and the TUI's frames per second and
# drawing cost (its --stats line).
#   bench/tui_cost.sh [MODEL] [TASK] [STEPS] [ROUNDS]
# MODEL defaults to the default base model (scripts/default-model.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BILORA_ASSETS:-}" ] && [ -d ../shared/data/glue ]; then
  export BILORA_ASSETS="$(cd ../shared && pwd)"
fi
model=${1:-$(scripts/default-model.sh)} || exit 1
task=${2:-RTE}
steps=${3:-30}
rounds=${4:-2}
flags=(--model "$model" --task "$task" --method lora --steps "$steps" --batch-size 16 --max-seq-len 128
       --eval-every 100000 --eval-train-examples 16 --seed 42)
dir=$(mktemp -d)
sock="bilora-bench-$$"
trap 'tmux -L "$sock" kill-server 2>/dev/null; rm -rf "$dir"' EXIT
command -v tmux >/dev/null || { echo "tui_cost: tmux is not installed" >&2; exit 1; }

headless() { # prints: seconds-in-steps wall
  local t0 t1
  t0=$(date +%s.%N)
  ./bilora train "${flags[@]}" --json > "$dir/h.json" 2> "$dir/h.err" || { cat "$dir/h.err" >&2; exit 1; }
  t1=$(date +%s.%N)
  python3 - "$dir/h.json" "$t0" "$t1" <<'PY'
import json, sys
s = sum(json.loads(l).get("step_seconds", 0) for l in open(sys.argv[1]) if '"event":"step"' in l)
print(f"{s:.2f} {float(sys.argv[3]) - float(sys.argv[2]):.2f}")
PY
}

tui() { # prints: seconds-in-steps wall fps draw%
  local t0 t1 end
  rm -f "$dir/t.err" "$dir/t.rc"
  t0=$(date +%s.%N)
  tmux -L "$sock" new-session -d -s b -x 100 -y 30 \
    "env TERM=xterm-256color LANG=C.UTF-8 ./bilora tui ${flags[*]} --stats 2> $dir/t.err; echo \$? > $dir/t.rc"
  end=$((SECONDS + 3600))
  # finished: the stats row says so; then q (and y if it asks).
  while [ $SECONDS -le $end ]; do
    tmux -L "$sock" capture-pane -p -t b 2>/dev/null | head -1 | grep -qE "finished|done|failed" && break
    [ -f "$dir/t.rc" ] && break
    sleep 0.5
  done
  tmux -L "$sock" send-keys -t b q
  sleep 0.5
  tmux -L "$sock" capture-pane -p -t b 2>/dev/null | grep -q "discard" && tmux -L "$sock" send-keys -t b y
  while [ ! -s "$dir/t.rc" ] && [ $SECONDS -le $end ]; do sleep 0.2; done
  t1=$(date +%s.%N)
  python3 - "$dir/t.err" "$t0" "$t1" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
m = re.search(r"\(([\d.]+) s in steps\)", t)
f = re.search(r"\(([\d.]+) per second\), [\d.]+ ms per frame, ([\d.]+)% of one core", t)
if not m or not f:
    sys.exit("tui_cost: no --stats lines from the TUI:\n" + t)
print(f"{float(m.group(1)):.2f} {float(sys.argv[3]) - float(sys.argv[2]):.2f} {f.group(1)} {f.group(2)}")
PY
}

echo "tui_cost: $model, $task, $steps LoRA steps (batch 16, max-seq-len 128), $rounds rounds, $(nproc) cores"
printf '%-6s %-9s %10s %9s %9s %8s %10s\n' round mode "steps s" "wall s" "steps/s" fps "draw %core"
hs=0; ts=0
for r in $(seq 1 "$rounds"); do
  read -r hstep hwall < <(headless) || exit 1
  printf '%-6s %-9s %10s %9s %9.3f %8s %10s\n' "$r" headless "$hstep" "$hwall" "$(echo "$steps / $hstep" | bc -l)" - -
  read -r tstep twall fps draw < <(tui) || exit 1
  printf '%-6s %-9s %10s %9s %9.3f %8s %10s\n' "$r" tui "$tstep" "$twall" "$(echo "$steps / $tstep" | bc -l)" "$fps" "$draw"
  hs=$(echo "$hs + $hstep" | bc -l); ts=$(echo "$ts + $tstep" | bc -l)
done
printf 'time in steps, TUI / headless (sum of %s rounds): %.3f  (the UI costs the run %+.1f%%)\n' \
  "$rounds" "$(echo "$ts / $hs" | bc -l)" "$(echo "100 * ($ts / $hs - 1)" | bc -l)"
