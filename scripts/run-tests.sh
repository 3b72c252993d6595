#!/usr/bin/env bash
# Runs the test suite: first the reference generators (Hugging Face peers in
# .venv write their outputs under build/reference/), then every Check suite
# under build/tests/, then the end-to-end scripts under tests/e2e/. Prints one closing line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
export BILORA_REF_DIR="${BILORA_REF_DIR:-$PWD/build/reference}"
mkdir -p "$BILORA_REF_DIR"
PY=.venv/bin/python
export CK_DEFAULT_TIMEOUT="${CK_DEFAULT_TIMEOUT:-600}"

passed=0; failed=0; failed_names=()
for gen in tests/reference/gen_*.py; do
  [ -e "$gen" ] || continue
  echo "== reference: $gen"
  if ! "$PY" "$gen" "$BILORA_REF_DIR"; then
    echo "reference generator failed: $gen" >&2
    failed=$((failed + 1)); failed_names+=("$gen")
  fi
done

for t in build/tests/test_* build/tsan/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  case "$t" in build/tsan/*) name="$name (ThreadSanitizer)";; esac
  echo "== $name"
  case "$t" in
    build/tsan/*) out=$(OPENBLAS_NUM_THREADS=1 TSAN_OPTIONS=halt_on_error=1 "$t" 2>&1); rc=$? ;;
    *) out=$("$t" 2>&1); rc=$? ;;
  esac
  printf '%s\n' "$out"
  # Check prints "NN%: Checks: C, Failures: F, Errors: E"
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks: ' | tail -1)
  if [ -n "$line" ]; then
    c=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$line")
    f=$(sed -E 's/.*Failures: ([0-9]+).*/\1/' <<<"$line")
    e=$(sed -E 's/.*Errors: ([0-9]+).*/\1/' <<<"$line")
    passed=$((passed + c - f - e)); failed=$((failed + f + e))
  fi
  if [ $rc -ne 0 ]; then
    [ -n "$line" ] || failed=$((failed + 1))
    failed_names+=("$name")
  fi
done

# End-to-end scripts (the real binary in tmux): one check each.
for e in tests/e2e/*.sh; do
  [ -x "$e" ] || continue
  name="e2e $(basename "$e" .sh)"
  echo "== $name"
  if "$e"; then passed=$((passed + 1)); else failed=$((failed + 1)); failed_names+=("$name"); fi
done

echo
[ ${#failed_names[@]} -eq 0 ] || echo "failing: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ] && [ ${#failed_names[@]} -eq 0 ]
