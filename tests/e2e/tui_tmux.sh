#!/usr/bin/env bash
# End-to-end: the real binary in tmux (send-keys, capture-pane), on the
# default base model (scripts/default-model.sh) and RTE. Picks through the
# picker, starts a LoRA run, sees the step count rise and the loss chart
# fill, changes lower-lr live and sees the change in the event log, pauses,
# resumes and quits. The captures are kept under build/e2e/ (picker.txt,
# dashboard.txt, ...). Exit 0: passed; 1: failed (with the screen).
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${BILORA_ASSETS:-}" ] && [ -d ../shared/data/glue ]; then
  export BILORA_ASSETS="$(cd ../shared && pwd)"
fi
out=build/e2e
mkdir -p "$out"
rm -f "$out"/*.txt "$out"/exit
sock="bilora-e2e-$$"
T() { tmux -L "$sock" "$@"; }
cleanup() { T kill-server 2>/dev/null; }
trap cleanup EXIT

command -v tmux >/dev/null || { echo "FAIL: tmux is not installed (scripts/install-deps.sh installs it)"; exit 1; }
[ -x ./bilora ] || { echo "FAIL: ./bilora is not built"; exit 1; }
model=$(scripts/default-model.sh) || { echo "FAIL: no default base model"; exit 1; }
echo "e2e: default base model: $model"

screen() { T capture-pane -p -t e2e 2>/dev/null; }
fail() {
  echo "FAIL: $*"
  echo "---- screen ----"
  screen
  echo "----------------"
  exit 1
}
# wait_for TEXT SECONDS [ROW]: polls the screen (or one row of it) for TEXT.
wait_for() {
  local text=$1 secs=$2 row=${3:-} end=$((SECONDS + $2))
  while [ $SECONDS -le $end ]; do
    if [ -n "$row" ]; then
      screen | sed -n "$((row + 1))p" | grep -qF -- "$text" && return 0
    else
      screen | grep -qF -- "$text" && return 0
    fi
    [ -f "$out/exit" ] && break
    sleep 0.2
  done
  fail "waited ${secs} s for \"$text\"${row:+ on row $row}"
}
# The step on the stats row: " ● running  step 1,234/4,980 ...".
step_now() { screen | sed -n 1p | sed -nE 's/.*step ([0-9,]+)\/.*/\1/p' | tr -d ,; }
keys() { T send-keys -t e2e "$@"; }

# Small batches and short sequences so steps come every second or two on a
# CPU; evaluations now and then, on a small train subset.
T new-session -d -s e2e -x 100 -y 30 \
  "env TERM=xterm-256color LANG=C.UTF-8 LC_ALL=C.UTF-8 ./bilora tui --model '$model' --batch-size 8 --max-seq-len 64 \
   --eval-every 25 --eval-train-examples 32 --steps 300; echo \$? > $out/exit" || fail "tmux did not start"
T set-option -t e2e remain-on-exit on >/dev/null

# 1 model: the default one is preselected; 2 task: RTE; 3 method: lora.
wait_for "step 1 of 3" 20
wait_for "▸ $model " 5
screen > "$out/picker.txt"
keys Enter
wait_for "step 2 of 3" 5
for _ in $(seq 1 12); do
  screen | grep -qF "▸ RTE " && break
  keys Down
  sleep 0.2
done
wait_for "▸ RTE " 5
keys Enter
wait_for "step 3 of 3" 5
wait_for "▸ lora " 5
keys Enter
wait_for "set up the run" 5
screen > "$out/form.txt"
keys r

# Running: the step count rises and the loss chart fills.
wait_for "running" 60 0
wait_for "$model · RTE · lora" 5 1
s1=""
end=$((SECONDS + 120))
while [ $SECONDS -le $end ]; do s1=$(step_now); [ -n "$s1" ] && [ "$s1" -ge 1 ] && break; sleep 0.5; done
[ -n "$s1" ] && [ "$s1" -ge 1 ] || fail "no step after 120 s"
s2=$s1
end=$((SECONDS + 120))
while [ $SECONDS -le $end ] && [ "$s2" -lt $((s1 + 5)) ]; do sleep 0.5; s2=$(step_now); s2=${s2:-0}; done
[ "$s2" -ge $((s1 + 5)) ] || fail "the step count did not rise ($s1 -> $s2 in 120 s)"
# Braille dots in the loss box: the chart has drawn the train loss.
chart=$(screen | sed -n '3,12p' | cut -c1-50)
printf '%s\n' "$chart" | LC_ALL=C.UTF-8 grep -qP '[\x{2801}-\x{28FF}]' || fail "no curve in the loss chart"
screen > "$out/dashboard.txt"
echo "e2e: running, step $s1 -> $s2"

# lower-lr changed live (the run keeps going): the form, find, type.
keys t
wait_for "tune ·" 10
keys / l o w e r - l r Enter
wait_for "▸ lower-lr" 5
keys Enter
keys C-u 1e-4 Enter
wait_for "lower-lr = 1e-4, applied at the next step" 10
keys Escape
wait_for "Events" 10
wait_for "lower-lr 5e-4 → 1e-4 (live)" 60
screen > "$out/live_change.txt"

# Pause, resume.
keys p
wait_for "paused" 60 0
p1=$(step_now)
sleep 3
p2=$(step_now)
[ "$p1" = "$p2" ] || fail "steps went on while paused ($p1 -> $p2)"
screen > "$out/paused.txt"
keys p
wait_for "running" 10 0
end=$((SECONDS + 120))
r=$p2
while [ $SECONDS -le $end ] && [ "$r" -le "$p2" ]; do sleep 0.5; r=$(step_now); r=${r:-0}; done
[ "$r" -gt "$p2" ] || fail "no step after resuming (at $p2)"
echo "e2e: paused at $p2, resumed to $r"

# Quit: asked first, then gone with status 0.
keys q
wait_for "discard the unsaved run" 10
keys y
end=$((SECONDS + 60))
while [ $SECONDS -le $end ] && [ ! -s "$out/exit" ]; do sleep 0.2; done
[ -s "$out/exit" ] || fail "bilora did not exit after q, y"
rc=$(cat "$out/exit")
[ "$rc" = 0 ] || fail "bilora exited with status $rc"
echo "e2e: passed (captures in $out/)"
